"""A fresh tester's findings on issue 12: non-finite samples skipped by every summary (one helper) and said so;
`verify` on a file another program holds open says "in use" (exit 2), never a tamper alarm; sentences without
HDF5's text; a killed writer's file comes with the exact commands that open it in h5dump (on a copy).

Real recordings (a headless session, the recorder), reopened and changed with plain h5py; the CLI in real processes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers_load import scenario_run
from helpers_recording import assert_in_words, write_session
from hypothesis import given, settings
from hypothesis import strategies as st

from workstation.checksum import write_checksum
from workstation.recording import Recording
from workstation.recording.format import checksum_path
from workstation.recording.summary import finite_rows, summarize

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def _main(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def session_recording(tmp_path_factory) -> Path:
    """A real headless session's recording (combined-uneventful: one UV exposure on left-cheek, then needling)."""
    return Path(scenario_run("combined-uneventful", tmp_path_factory.mktemp("session")).recording)


def _dose_lines(text: str) -> dict[str, float]:
    return {m[1]: float(m[2]) for m in re.finditer(r"^  (\S+): ([0-9.]+) mJ/cm²$", text, re.M)}


def _with_nan(src: Path, dst_dir: Path, channel: str = "dose_mj_cm2", n: int = 10, offset: int = 100,
              value: float = np.nan) -> Path:
    """A copy of the recording with `n` samples of the light's `channel` set to `value`, inside the exposure."""
    dst = dst_dir / src.name
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        ds = f["devices/light/telemetry"]
        first_open = int(np.flatnonzero(ds.fields("shutter_open")[:])[0])
        rows = ds[first_open + offset:first_open + offset + n]
        rows[channel] = value
        ds[first_open + offset:first_open + offset + n] = rows
    return dst


# ---- 1: non-finite samples --------------------------------------------------------------------------------------
def test_nan_doses_are_skipped_by_inspect_audit_export_and_report_and_said_so(session_recording, tmp_path):
    clean = _main("inspect", str(session_recording))
    assert clean.returncode == 0, clean.stderr
    expected = _dose_lines(clean.stdout)
    assert expected.get("left-cheek", 0) > 100  # the exposure delivered its dose
    copy = _with_nan(session_recording, tmp_path)

    out = _main("inspect", str(copy))
    assert out.returncode == 0, out.stderr
    assert _dose_lines(out.stdout) == expected, out.stdout  # the tester's 0.0 mJ/cm² came from max() over a NaN
    assert "10 samples with a non-finite value" in out.stdout

    audit_clean, audit = _main("audit", str(session_recording)), _main("audit", str(copy))
    # the checks judged on samples cannot be judged on the skipped ones: set apart, exit 3 (third fresh tester)
    assert audit.returncode == 3 and audit_clean.returncode == 0, audit.stdout + audit.stderr
    assert "10 samples with a non-finite value (NaN or ±inf) skipped" in audit.stdout
    assert "non-finite" not in audit_clean.stdout

    export = _main("export", str(copy), "--csv", str(tmp_path / "csv"))
    assert export.returncode == 0, export.stderr
    assert "light.csv has 10 samples with a non-finite value" in export.stdout
    assert "pen.csv" in export.stdout and "pen.csv has" not in export.stdout

    from workstation.ui.report_data import read_report

    data = read_report(copy)
    assert any("10 samples with a non-finite value" in line for line in data.lines())
    assert not any("non-finite" in line for line in read_report(session_recording).lines())


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_samples_leave_the_dose_as_it_was(session_recording, tmp_path, value):
    copy = _with_nan(session_recording, tmp_path, n=3, offset=50, value=value)
    with Recording.open(session_recording) as a, Recording.open(copy) as b:
        sa, sb = summarize(a), summarize(b)
    assert sb.dose_per_area_mj_cm2 == sa.dose_per_area_mj_cm2
    assert [d.nonfinite_samples for d in sb.devices if d.name == "light"] == [3]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.5, -2.0, 1e30, float("nan"), float("inf"), float("-inf")]), max_size=40),
       st.sampled_from(["irradiance_mw_cm2", "dose_mj_cm2", "lamp_temp_c"]))
def test_finite_rows_keeps_exactly_the_finite_samples(values, channel):
    from helpers_recording import light_rows

    rows = light_rows(0, len(values))
    rows[channel] = values
    kept, skipped = finite_rows(rows)
    finite = np.isfinite(np.asarray(values, dtype=np.float32))
    assert skipped == int((~finite).sum()) and len(kept) == int(finite.sum())
    for name in kept.dtype.names:
        if kept.dtype[name].kind == "f":
            assert np.isfinite(kept[name]).all()
    np.testing.assert_array_equal(kept["t_device_us"], rows["t_device_us"][finite])


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_trip_review_skips_non_finite_samples(tmp_path, value):
    """The runner's and inspect's trip review: the dose delivered after the stop is a number, never nan."""
    from workstation.bus import Event
    from workstation.recording.summary import review_text

    trip = Event(1004.0, "interlock", "high", "safety", "test trip",
                 {"device": "light", "interlock": "estop", "stop_written_t_host_s": 1004.0})
    path = write_session(tmp_path, 6.0, events=[trip])
    with h5py.File(path, "r+") as f:  # the last samples before the light stops by itself at 5 s
        ds = f["devices/light/telemetry"]
        rows = ds[9990:10000]
        rows["dose_mj_cm2"] = value
        ds[9990:10000] = rows
    with Recording.open(path) as r:
        (review,) = summarize(r).trip_reviews
    assert review.active_at_stop and review.dose_after_stop_mj_cm2 is not None
    assert 35.0 < review.dose_after_stop_mj_cm2 < 40.0  # about 1 s at 40 mW/cm², less the skipped 5 ms
    assert "nan" not in review_text(review) and "inf" not in review_text(review)


def test_a_trip_review_places_late_frames_at_their_device_time(tmp_path):
    """Fourth fresh tester of issue 12: after a 1.3 s stall of the workstation the frames the light sent meanwhile
    arrived all at once, after the stop was written, and the review counted their dose "after the stop" (93 mJ/cm²
    in 70 ms at 95 mW/cm²). Samples are placed by the device clock, not by their frames' late arrival."""
    from workstation.bus import Event

    trip = Event(1004.0, "interlock", "high", "safety", "test trip",
                 {"device": "light", "interlock": "estop", "stop_written_t_host_s": 1004.0})
    path = write_session(tmp_path, 6.0, events=[trip])
    with h5py.File(path, "r+") as f:  # 2.7–4.0 s of samples (2000 Hz) held in the port, read 70 ms after the stop
        ds = f["devices/light/telemetry"]
        rows = ds[5400:8000]
        rows["t_host_s"] = 1004.07
        ds[5400:8000] = rows
    with Recording.open(path) as r:
        (review,) = summarize(r).trip_reviews
    assert review.active_at_stop and 35.0 < review.dose_after_stop_mj_cm2 < 41.0  # 1 s at 40 mW/cm², not 2.3 s
    assert 990 < review.stopped_ms < 1010  # the light stopped by itself at 5 s: 1 s after the stop was written


def test_crash_recovery_doses_skip_nan_samples(session_recording, tmp_path):
    from workstation.session.journal import deliveries_from_recording

    copy = _with_nan(session_recording, tmp_path)
    assert deliveries_from_recording(copy) == deliveries_from_recording(session_recording)


@pytest.mark.parametrize("channel", ["lamp_temp_c", "irradiance_mw_cm2"])
def test_a_non_finite_channel_does_not_hide_the_dose_its_rows_measured(session_recording, tmp_path, channel):
    """Fourth fresh tester of issue 12: a NaN lamp temperature over an exposure (its dose channel finite) dropped
    those rows from every dose figure: inspect said 20.5 mJ/cm² of 130, and crash recovery wrote 52 of 206 to the
    store, an under-counted UV dose. A figure skips only the samples whose channels it reads are not finite."""
    from workstation.session.journal import deliveries_from_recording

    copy = _with_nan(session_recording, tmp_path, channel=channel, n=10**7, offset=5)  # to the end of the file
    with Recording.open(session_recording) as a, Recording.open(copy) as b:
        sa, sb = summarize(a), summarize(b)
        skipped = [d.nonfinite_samples for d in sb.devices if d.name == "light"][0]
    assert sb.dose_per_area_mj_cm2 == sa.dose_per_area_mj_cm2 and min(sa.dose_per_area_mj_cm2.values()) > 100
    assert skipped > 1000  # still counted and said: the samples are not all measurements
    assert deliveries_from_recording(copy) == deliveries_from_recording(session_recording)
    assert _dose_lines(_main("inspect", str(copy)).stdout) == _dose_lines(_main("inspect", str(session_recording)).stdout)


# ---- 5: verify on a file another program writes ---------------------------------------------------------------
HOLD = "import h5py, sys, time\nf = h5py.File(sys.argv[1], 'a')\nprint('open', flush=True)\ntime.sleep(60)\n"


@contextlib.contextmanager
def _held_for_writing(path: Path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        yield
    finally:
        proc.kill()
        proc.wait()


def test_verify_on_a_file_held_for_writing_by_another_program_says_in_use_not_tampered(tmp_path):
    path = write_session(tmp_path, 1.0)
    assert _main("verify", str(path)).returncode == 0  # intact before
    with _held_for_writing(path):
        for cmd in ("verify", "inspect"):
            out = _main(cmd, str(path))
            text = out.stdout + out.stderr
            assert out.returncode == 2, f"{cmd}: exit {out.returncode}: {text}"
            assert "in use by another program" in text and "not damaged" in text, text
            assert "DOES NOT MATCH" not in text and "MODIFIED" not in text and "Traceback" not in text


PLAIN_HOLD = "import sys, time\nf = open(sys.argv[1], 'r+b')\nprint('open', flush=True)\ntime.sleep(60)\n"


def test_every_command_refuses_a_file_another_program_has_open_for_writing_without_hdf5(tmp_path):
    """Fourth fresh tester of issue 12: `( exec 3<>FILE; sleep 8 )` held the recording open for writing, without
    HDF5's lock: verify said "in use", but inspect, audit, export and report read it and called it intact."""
    path = write_session(tmp_path, 1.0)
    proc = subprocess.Popen([sys.executable, "-c", PLAIN_HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        for args in (["verify", str(path)], ["inspect", str(path)], ["audit", str(path)],
                     ["export", "--csv", str(tmp_path / "csv"), str(path)],
                     ["report", str(path), "--out", str(tmp_path / "r.pdf")]):
            out = _main(*args, timeout=120)
            text = out.stdout + out.stderr
            assert out.returncode == 2, f"{args[0]}: exit {out.returncode}: {text[-1500:]}"
            assert "in use by another program" in text and "not damaged" in text and "Traceback" not in text, text
    finally:
        proc.kill()
        proc.wait()
    assert _main("inspect", str(path)).returncode == 0  # closed there: read as before


# ---- 7: sentences, not HDF5's text ------------------------------------------------------------------------------
@pytest.mark.parametrize("keep", [0.45, 0.9, 0.01, 100])
def test_inspect_on_a_truncated_file_says_so_in_words(tmp_path, keep):
    path = write_session(tmp_path, 2.0)
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[:int(keep * len(data)) if keep < 1 else keep])
    for cmd in (["inspect", str(cut)], ["audit", str(cut)], ["export", str(cut), "--csv", str(tmp_path / "c")]):
        out = _main(*cmd)
        assert out.returncode == 2, out.stdout + out.stderr
        assert "cut.h5" in out.stderr
        assert_in_words(out.stdout + out.stderr)


def test_a_failed_write_is_a_sentence_and_no_logger_line_reaches_the_terminal(tmp_path):
    """The recorder stops on a full disk (its reserve); with the log folder unwritable (then warnings go to the
    terminal) its error still reaches the user only as the session's sentence, not as an `ERROR …writer:` line."""
    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        "import helpers_recording as h\n"
        "from workstation.logsetup import configure_logging\n"
        "configure_logging(sys.argv[2])\n"
        "errs = []\n"
        "rec = h.SessionRecorder.create(sys.argv[1], h.meta(), min_free_bytes=0, reserve_bytes=10**18, "
        "on_error=lambda e: errs.append(str(e)), t0_host_s=1000.0, flush_interval_s=0.05)\n"
        "h.add_devices(rec)\n"
        "rec.start()\n"
        "k = 0\n"
        "while not errs and k < 3000:\n"
        "    rec.on_block('light', h.frames('light', k, 1)[0]); k += 1; time.sleep(0.002)\n"
        "rec.close()\n"
        "print('ERROR-TEXT', errs[0] if errs else None)\n")
    not_a_folder = tmp_path / "logs"
    not_a_folder.write_text("a file where the log folder should be")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "rec"), str(not_a_folder)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("ERROR-TEXT"))
    assert "is nearly full" in line and "below the" in line and "free some space" in line
    assert_in_words(line)
    assert "ERROR workstation" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    path = next((tmp_path / "rec").glob("*/*.h5"))
    with h5py.File(path, "r") as f:
        note = f.attrs["close_note"]
    assert "is nearly full" in note
    assert_in_words(note)


OLD_NOTES = [
    "The disk holding /r/x.h5 is full (or the file reached its size limit): recording stopped. The session must stop; "
    "free some space before the next one. (Unable to synchronously flush file (file write failed: time = Mon Nov 30 "
    "13:06:26 2026)",
    "Writing the recording /r/x.h5 failed: recording stopped. The session must stop. ([Errno 5] Input/output error)",
]


@pytest.mark.parametrize("note", OLD_NOTES)
def test_the_close_note_of_an_earlier_version_is_shown_without_hdf5_text(tmp_path, note):
    path = write_session(tmp_path, 0.5)
    with h5py.File(path, "r+") as f:  # as the earlier writer left it
        f.attrs["closed_cleanly"] = False
        f.attrs["close_note"] = note
    with Recording.open(path) as r:
        assert r.partial and note.split(" (")[0] in (r.partial_reason or "")
        assert_in_words(r.partial_reason or "")
    out = _main("inspect", str(path))
    assert out.returncode == 0
    partial = next(x for x in out.stdout.splitlines() if "PARTIAL" in x)
    assert_in_words(partial)


# ---- 10: a killed writer's file, and the way to open it in h5dump -----------------------------------------------
def test_a_killed_recording_comes_with_the_commands_that_open_it_in_h5dump(tmp_path):
    proc = subprocess.Popen([sys.executable, str(TESTS / "helpers_recording.py"), str(tmp_path)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    path = None
    try:
        for line in proc.stdout:
            if line.startswith("path "):
                path = Path(line.split(" ", 1)[1].strip())
            elif line.startswith("flushed") and int(line.split()[1]) > 2000:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert path is not None
    unclaimed = path.with_name("unclaimed.h5")
    shutil.copy2(path, unclaimed)
    # a checksum was taken of the marked file (as crash recovery of an older version did): inspect must not change
    # its bytes, and gives the commands that open a copy instead
    write_checksum(path, checksum_path(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    out = _main("inspect", str(path))
    assert out.returncode == 0, out.stderr
    m = re.search(r"(cp '[^']+' '[^']+' && h5clear -s '[^']+')", out.stdout)
    assert m, out.stdout
    copy = path.with_name(path.stem + "-copy.h5")
    assert f"h5clear -s '{copy}'" in m[1]
    if not (shutil.which("h5clear") and shutil.which("h5dump")):
        pytest.skip("Debian's hdf5-tools are not installed (CI installs them)")
    assert subprocess.run(["h5dump", "-H", str(path)], capture_output=True).returncode != 0  # the mark stands
    subprocess.run(m[1], shell=True, check=True, capture_output=True)  # the command exactly as printed
    dump = subprocess.run(["h5dump", "-H", str(copy)], capture_output=True, text=True)
    assert dump.returncode == 0 and "telemetry" in dump.stdout, dump.stderr[-500:]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # the checksummed original is never changed
    # no checksum of it yet: inspect clears the mark itself (workstation/recording/mark.py) and h5dump opens it
    out = _main("inspect", str(unclaimed))
    assert out.returncode == 0 and "cleared the \"open for writing\" mark" in out.stdout, out.stdout
    dump = subprocess.run(["h5dump", "-H", str(unclaimed)], capture_output=True, text=True)
    assert dump.returncode == 0 and "h5clear" not in dump.stderr, dump.stderr[-500:]
