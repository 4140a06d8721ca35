"""More of the kind the held-recording fix belongs to (the sixteenth session's fresh tester of issue 12), each with
real processes: the runner killed by its scenario, a holder process, the restart, `recording sync`, `inspect`.

- A killed session's file whose mark `inspect` had cleared, then held open for writing by another program (a plain
  read-write open, or h5py in append mode): recovery sealed and indexed bytes that may still change, or, when the
  holder kept HDF5 from reading it, wrote "damaged or cut short" into the store for a file that was only in use.
  Now it waits, unsealed and unindexed, and says so; once the holder is gone `recording sync` recovers it and
  counts its doses.
- `inspect` on a killed file that a reader holds said "being recorded now".
- A killed session's recording moved off this disk: the restart and `recording sync` said it was "still on vm's
  disk" (vm being this workstation) and sync said "nothing is left" (exit 0). Now both say it is missing here and
  what to do, sync counts it as waiting (exit 1), and once it is back, sync recovers it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers_recording import reader_holding
from test_s18_held_recovery import ROOT, _env, _killed, _sealed, _sync, _unsealed

from workstation.recording.mark import open_mark
from workstation.store import ClinicStore

WRITING = "that program has it open for writing, so its bytes may still change"
MISSING = "is not on this workstation's disk, where it was recorded"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=_env())


def _dose(store, session_id: int = 1) -> float | None:
    with ClinicStore.open(store, training=True) as s:
        [hist] = s.history(1)
        light = hist.treatment(1, "light")
        return None if light is None else light.dose_mj_cm2


@pytest.mark.parametrize("how", ["raw", "append"])
def test_a_killed_recording_held_for_writing_waits_unsealed_and_is_never_called_damaged(tmp_path, how):
    store, h5, cmd, dose = _killed(tmp_path)
    share = tmp_path / "share"
    share.mkdir()
    cleared = _cli("inspect", str(h5))  # a look at the file first: its mark cleared, nothing else changed
    assert cleared.returncode == 0 and not open_mark(h5), cleared.stdout + cleared.stderr
    with reader_holding(h5, how):
        restart = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, env=_env())
        said = restart.stdout + restart.stderr
        assert "Traceback" not in said and WRITING in said, said
        assert "damaged" not in said and "close that program, and the next start or `" in said
        _unsealed(store, h5, dose if how == "raw" else None, marked=how == "append", said=WRITING)  # h5py marks it
        if how == "append":  # HDF5 would not read it while h5py holds it so: the journal's doses, until it is free
            assert "until then only the doses journalled while it ran are kept" in said
        waiting = _sync(store, share, "--once")
        assert waiting.returncode == 1 and WRITING in waiting.stdout, waiting.stdout + waiting.stderr
        assert "nothing is left" not in waiting.stdout and list(share.iterdir()) == []
        _unsealed(store, h5, dose if how == "raw" else None, marked=how == "append", said=WRITING)  # h5py marks it
    synced = _sync(store, share, "--once")
    assert synced.returncode == 0 and "1 recording copied" in synced.stdout, synced.stdout + synced.stderr
    _sealed(store, h5)
    assert _dose(store) == pytest.approx(dose, abs=0.01)  # counted once the file could be read


def test_inspect_of_a_killed_file_a_reader_holds_never_says_it_is_being_recorded(tmp_path):
    _store, h5, _cmd, _dose_given = _killed(tmp_path)
    with reader_holding(h5):
        out = _cli("inspect", str(h5))
        text = out.stdout + out.stderr
        assert "being recorded now" not in text and "Traceback" not in text, text
        assert "no program on this computer has it open for writing" in text, text
        assert open_mark(h5)  # a held file is never changed


def test_a_killed_recording_missing_from_this_disk_is_said_missing_here_and_recovered_when_back(tmp_path):
    store, h5, cmd, dose = _killed(tmp_path)
    share, away = tmp_path / "share", tmp_path / "elsewhere" / h5.name
    share.mkdir()
    away.parent.mkdir()
    h5.rename(away)
    restart = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, env=_env())
    said = restart.stdout + restart.stderr
    assert "Traceback" not in said and f"{h5} {MISSING}" in said and "'s disk, not yet copied" not in said, said
    assert "put it back there, and the next start or `" in said
    listed = _sync(store, share, "--list")
    assert listed.returncode == 1 and MISSING in listed.stdout, listed.stdout + listed.stderr
    assert "not yet copied (that workstation copies it)" not in listed.stdout
    waiting = _sync(store, share, "--once")
    assert waiting.returncode == 1 and MISSING in waiting.stdout, waiting.stdout + waiting.stderr
    assert "nothing is left" not in waiting.stdout and "'s disk, not yet copied" not in waiting.stdout
    assert _dose(store) is None  # the journal's, until the recording is back
    away.rename(h5)
    synced = _sync(store, share, "--once")
    assert synced.returncode == 0 and "1 recording copied" in synced.stdout, synced.stdout + synced.stderr
    _sealed(store, h5)
    assert _dose(store) == pytest.approx(dose, abs=0.01)


def test_inspect_of_a_live_recording_leaves_nothing_beside_it(tmp_path):
    """Sixteenth session's second fresh tester: `inspect` on a file still being recorded left a 0-byte kill trace
    (`.<uuid>.h5.ballast-freed`) beside it for good, which crash recovery reads as a kill."""
    import time

    from workstation.recording.format import freed_ballast_path

    rec = tmp_path / "rec"
    session = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "session", "--simulate", "--scenario",
                                str(ROOT / "seeds" / "scenarios" / "combined-uneventful.toml"), "--record", str(rec),
                                "--store", str(tmp_path / "s.sqlite3")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env())
    try:
        deadline = time.monotonic() + 120
        while not list(rec.glob("*/*.h5")) and time.monotonic() < deadline and session.poll() is None:
            time.sleep(0.05)
        [h5] = list(rec.glob("*/*.h5"))
        looked = _cli("inspect", str(h5))
        assert "Traceback" not in looked.stderr, looked.stderr
        assert not freed_ballast_path(h5).exists(), looked.stdout
    finally:
        out, err = session.communicate(timeout=180)
    assert "Traceback" not in err, err[-2000:]
    assert not freed_ballast_path(h5).exists() and not list(rec.glob("*/.*ballast*"))


def test_a_killed_file_another_program_writes_is_never_called_a_live_session_and_gets_no_trace(tmp_path):
    from workstation.recording.format import freed_ballast_path

    _store, h5, _cmd, _dose_given = _killed(tmp_path)
    with reader_holding(h5, "raw"):
        verified = _cli("verify", str(h5))
        assert verified.returncode == 2 and "most often its session" in verified.stderr, verified.stderr
        assert "being recorded now by a session" not in verified.stderr
        looked = _cli("inspect", str(h5))
        assert "Traceback" not in looked.stderr and open_mark(h5), looked.stdout + looked.stderr
        assert not freed_ballast_path(h5).exists()


def test_sync_never_calls_a_missing_recording_safe(tmp_path):
    store, h5, cmd, _dose_given = _killed(tmp_path)
    share = tmp_path / "share"
    share.mkdir()
    h5.unlink()
    subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, env=_env())
    waiting = _sync(store, share, "--once")
    assert waiting.returncode == 1 and MISSING in waiting.stdout, waiting.stdout + waiting.stderr
    assert "The other recordings are safe on this workstation." in waiting.stdout, waiting.stdout
    assert "The recordings are safe" not in waiting.stdout
