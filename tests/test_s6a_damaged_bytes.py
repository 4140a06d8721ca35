"""A fresh tester on issue 12 ("trust nothing from outside: files"): a closed recording with 4 bytes overwritten by
0xff at one offset (`printf '\\xff\\xff\\xff\\xff' | dd of=copy.h5 bs=1 seek=OFFSET conv=notrunc`). At offsets 100, 600,
2000, 2400 and 4000 inspect, audit, export and report stopped on "an internal error" (exit 1; the log: AttributeError
'NoneType' object has no attribute 'attrs' in the reader's _read_device, from h5py's "incorrect metadata checksum");
at 20000 they called it "not a Cicatrix session recording"; the replay window showed "Error: 'NoneType' object has no
attribute 'attrs' Choose a recording made by Cicatrix", and ended the "in use by another program" sentence with that
advice too.

Whatever HDF5 raises on damaged bytes is now the one damaged-file sentence (workstation.recording.damaged), exit 2.
Real recordings from a real headless session; the CLI's main in-process for many offsets, real `python main.py`
processes for the tester's own offsets; the replay view offscreen."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from helpers_load import scenario_run

from workstation.recording import Recording, RecordingError

ROOT = Path(__file__).resolve().parents[1]
DAMAGED = "is a damaged HDF5 file"
TESTER_OFFSETS = (100, 600, 2000, 2400, 4000, 20000)
WRONG = ("internal error", "Traceback", "NoneType", "not a Cicatrix", "Unable to", "synchronously", "KeyError",
         "OSError", "checksum after")


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """A real headless session's recording (combined-uneventful: one UV exposure, then needling), closed."""
    return Path(scenario_run("combined-uneventful", tmp_path_factory.mktemp("s6a-session")).recording)


def _flipped(src: Path, folder: Path, offset: int) -> Path:
    """A copy of `src` (in a folder of its own, no checksum beside it) with 4 bytes at `offset` set to 0xff."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / "copy.h5"
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff\xff\xff\xff")
    return dst


@contextlib.contextmanager
def _flipped_in_place(path: Path, offset: int):
    """`path` with 4 bytes at `offset` set to 0xff for the block, then restored (no copy of the file per offset)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        before = f.read(4)
        f.seek(offset)
        f.write(b"\xff\xff\xff\xff")
    try:
        yield path
    finally:
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(before)


def _table_offsets(path: Path) -> list[int]:
    """Offsets inside every chunk of every dataset (events, commands, plan, index, telemetry): the tables' bytes."""
    found: list[int] = []

    def visit(_name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset) and obj.chunks:
            for i in range(obj.id.get_num_chunks()):
                info = obj.id.get_chunk_info(i)
                found.extend(info.byte_offset + k for k in (8, info.size // 2))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return sorted(found)


def _read_everything(path: Path) -> None:
    """All a command reads through the reader: metadata, tables, every row of every device, windows in time."""
    with Recording.open(path) as rec:
        assert rec.known_duration_s is None or rec.known_duration_s >= 0.0
        for device in rec.devices:
            rec.rows(device, 0, rec.samples(device))
            rec.telemetry(device, 0.5, 1.5)


def _reader_outcome(path: Path) -> str | None:
    """None when the file reads; the sentence when the reader refused it. Any other exception fails the test."""
    try:
        _read_everything(path)
    except RecordingError as exc:
        return str(exc)
    return None


def test_every_flip_in_the_metadata_and_tables_reads_or_is_called_damaged(recording, tmp_path):
    size = recording.stat().st_size
    offsets = sorted({*range(0, min(size - 4, 32 * 2**10), 97), *range(size - 8192, size - 4, 97),
                      *_table_offsets(recording), *TESTER_OFFSETS})
    copy = _flipped(recording, tmp_path, 0)
    shutil.copyfile(recording, copy)
    damaged = []
    for offset in offsets:
        with _flipped_in_place(copy, offset):
            said = _reader_outcome(copy)
        if said is not None:
            assert DAMAGED in said and not any(w in said for w in WRONG), f"offset {offset}: {said}"
            damaged.append(offset)
    assert len(damaged) > len(offsets) // 4, (len(damaged), len(offsets))  # the test flips what matters


def _cli(*args: str) -> tuple[int, str]:
    from workstation.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


def _commands(path: Path, folder: Path) -> dict[str, list[str]]:
    return {"inspect": ["inspect", str(path)], "audit": ["audit", str(path)],
            "export": ["export", str(path), "--csv", str(folder / "csv")],
            "report": ["report", str(path), "--out", str(folder / "r.pdf")]}


def _judge(name: str, offset: int, code: int, text: str) -> None:
    """0 (the flip hit unused bytes or data values; audit: 1 or 3, a judgement of the data), or 2 and the damaged
    sentence; never an internal error or the library's text."""
    assert not any(w in text for w in WRONG), f"{name} at {offset}: exit {code}: {text[-800:]}"
    if code == 2:
        assert DAMAGED in text, f"{name} at {offset}: {text[-800:]}"
    else:
        assert code in ((0, 1, 3) if name == "audit" else (0,)), f"{name} at {offset}: exit {code}: {text[-800:]}"


def test_inspect_audit_export_and_report_say_damaged_in_process(recording, tmp_path):
    """The commands' main, in this process, over a sample of offsets (metadata, the tester's, the tables)."""
    size = recording.stat().st_size
    tables = _table_offsets(recording)
    offsets = sorted({*range(0, 32 * 2**10, 487), *TESTER_OFFSETS, *tables[::3], size - 2000})
    for offset in offsets:
        folder = tmp_path / str(offset)
        path = _flipped(recording, folder, offset)
        for name, argv in _commands(path, folder).items():
            if name == "report" and offset % 3:
                continue  # the PDF takes longest: a third of the offsets
            code, text = _cli("--log-dir", str(tmp_path / "log"), *argv)
            _judge(name, offset, code, text)


@pytest.mark.parametrize("offset", [100, 2000, 20000])
def test_the_tester_offsets_in_real_processes(recording, tmp_path, offset):
    path = _flipped(recording, tmp_path, offset)
    for name, argv in _commands(path, tmp_path).items():
        out = subprocess.run([sys.executable, str(ROOT / "main.py"), "--log-dir", str(tmp_path / "log"), *argv],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
        text = out.stdout + out.stderr
        assert out.returncode == 2, f"{name} at {offset}: exit {out.returncode}: {text[-800:]}"
        _judge(name, offset, out.returncode, text)


def test_a_readable_hdf5_file_without_the_marker_is_still_not_a_recording(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "someone-elses"
        f["data"] = [1, 2, 3]
    with pytest.raises(RecordingError, match="is an HDF5 file but not a Cicatrix session recording"):
        Recording.open(p)


def test_a_recording_whose_signature_is_flipped_is_damaged_not_foreign(recording, tmp_path):
    said = _reader_outcome(_flipped(recording, tmp_path, 0))
    assert said is not None and DAMAGED in said and "not a Cicatrix" not in said, said


# --- the replay view --------------------------------------------------------------------------------------------------

def _view(qtbot):
    from workstation.ui.replay_view import ReplayView

    messages: list[tuple[str, str]] = []
    view = ReplayView(lambda text, level: messages.append((level, text)))
    qtbot.addWidget(view)
    return view, messages


@pytest.mark.parametrize("offset", [2000, 20000])
def test_the_replay_view_says_damaged_without_choose_another(qtbot, recording, tmp_path, offset):
    view, messages = _view(qtbot)
    view.open(_flipped(recording, tmp_path, offset))
    qtbot.waitUntil(lambda: any(level == "error" for level, _ in messages), timeout=20_000)
    text = next(t for level, t in messages if level == "error")
    assert DAMAGED in text, text
    assert "Choose a recording made by Cicatrix" not in text and not any(w in text for w in WRONG), text
    assert view.recording is None


HOLD = "import h5py, sys, time\nf = h5py.File(sys.argv[1], 'a')\nprint('open', flush=True)\ntime.sleep(60)\n"


def test_the_replay_view_says_in_use_without_choose_another(qtbot, recording, tmp_path):
    path = tmp_path / "held.h5"
    shutil.copyfile(recording, path)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        view, messages = _view(qtbot)
        view.open(path)
        qtbot.waitUntil(lambda: any(level == "error" for level, _ in messages), timeout=20_000)
    finally:
        proc.kill()
        proc.wait()
    text = next(t for level, t in messages if level == "error")
    assert "in use by another program" in text and "not damaged" in text, text
    assert "Choose a recording made by Cicatrix" not in text, text


def test_the_replay_view_still_advises_another_file_for_one_that_is_not_a_recording(qtbot, tmp_path):
    view, messages = _view(qtbot)
    bogus = tmp_path / "notes.h5"
    bogus.write_text("not a recording")
    view.open(bogus)
    qtbot.waitUntil(lambda: any(level == "error" for level, _ in messages), timeout=20_000)
    text = next(t for level, t in messages if level == "error")
    assert "not an HDF5 file" in text and "Choose a recording made by Cicatrix" in text, text
