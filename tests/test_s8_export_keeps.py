"""An export that fails leaves an earlier export in the same folder as it was (seventh session's leftover, issue 12:
"bad input loses nothing"). The seventh session made a failed export remove what it had written; written over an
earlier export's files, that removed them too: `export --csv out/` done once, then again on a disk that filled, left
`out/` without the first export's light.csv.

Now every file is written under a temporary name and takes its own only when the whole export is complete. Real
recordings from the recorder; a real 1 MB tmpfs filled by the export itself (root); an export stopped by Ctrl+C
in-process (no root needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers_recording import write_session

from workstation.recording import Recording
from workstation.recording.export import export_csv

ROOT = Path(__file__).resolve().parents[1]
FILES = ["commands.csv", "events.csv", "light.csv", "pen.csv"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_an_export_stopped_part_way_keeps_the_earlier_export_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    small = write_session(tmp_path / "a", 0.5)
    big = write_session(tmp_path / "b", 4.0)
    out = tmp_path / "out"
    with Recording.open(small) as rec:
        assert sorted(p.name for p in export_csv(rec, out)) == FILES
    before = _snapshot(out)
    (out / "notes.txt").write_text("the user's")

    def stop(done: int, total: int) -> None:
        if done > total // 2:
            raise KeyboardInterrupt  # Ctrl+C part-way through the second device

    with Recording.open(big) as rec, pytest.raises(KeyboardInterrupt):
        export_csv(rec, out, progress=stop)
    after = _snapshot(out)
    assert after.pop("notes.txt") == b"the user's"
    assert after == before  # byte for byte, no .partial left beside them


def test_a_complete_export_replaces_the_earlier_one_whole(tmp_path: Path) -> None:
    small = write_session(tmp_path / "a", 0.5)
    big = write_session(tmp_path / "b", 2.0)
    out = tmp_path / "out"
    with Recording.open(small) as rec:
        export_csv(rec, out)
    with Recording.open(big) as rec:
        files = export_csv(rec, out)
    assert [p.name for p in files] == ["light.csv", "pen.csv", "events.csv", "commands.csv"]
    assert sorted(p.name for p in out.iterdir()) == FILES
    assert len((out / "light.csv").read_text().splitlines()) == 1 + 4000  # 2 s at 2 kHz, and the header


def test_a_disk_that_fills_keeps_the_earlier_export(tmp_path: Path) -> None:
    small = write_session(tmp_path / "a", 0.2)
    big = write_session(tmp_path / "b", 20.0)  # some MB of CSV: more than the disk below has
    disk = tmp_path / "small"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("a small tmpfs cannot be mounted here (needs root)")
    try:
        out = disk / "csv"
        first = subprocess.run([sys.executable, str(ROOT / "main.py"), "export", "--csv", str(out), str(small)],
                               capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert first.returncode == 0, first.stderr[-1000:]
        before = _snapshot(out)
        assert sorted(before) == FILES
        done = subprocess.run([sys.executable, str(ROOT / "main.py"), "export", "--csv", str(out), str(big)],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        text = done.stdout + done.stderr
        assert done.returncode == 2 and "the disk is full" in text and "Traceback" not in text, text[-1000:]
        assert "nothing of it was kept, and what the folder held before is as it was" in text, text[-1000:]
        assert _snapshot(out) == before
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_temporary_files_are_the_workstations_own_and_a_dead_exports_are_removed(tmp_path: Path) -> None:
    """Two workstations (or two programs) exporting into one shared folder never write into each other's temporary
    file; what an export of this workstation left when it was killed is removed by the next, another's is not."""
    from workstation.keys import workstation_name

    small = write_session(tmp_path / "a", 0.5)
    out = tmp_path / "out"
    out.mkdir()
    host = workstation_name()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()  # a process that has ended: its pid runs nothing now
    left = out / f".light.csv.{host}.{dead}.part"
    left.write_text("half an export, killed")
    others = [out / ".light.csv.other-room.1234.part", out / f".pen.csv.{host}.1.part",  # another host; pid 1 runs
              out / f".light.csv.{host}.clinic.example.{dead}.part",  # a workstation whose name starts with ours
              out / f".light.csv.{host}.99999999999999999999.part", out / f".light.csv.{host}.²³.part"]  # not ours
    for p in others:
        p.write_text("another export, still being written")
    with Recording.open(small) as rec:
        export_csv(rec, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, *(p.name for p in others)])
    assert all(p.read_text() == "another export, still being written" for p in others)
