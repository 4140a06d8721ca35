"""A full disk is said in the same words by every command (fourth fresh tester of issue 12: export, report and
--log-dir said "No space left on device", the store "its disk is full", the recorder "is full (…)")."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers_recording import write_session

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def _full_tmpfs(folder: Path):
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("a small tmpfs cannot be mounted here (needs root)")
    try:
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # fill it to the last byte
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def test_export_report_and_the_log_folder_on_a_full_disk_say_the_disk_is_full(tmp_path):
    path = write_session(tmp_path, 1.0)
    with _full_tmpfs(tmp_path / "full") as full:
        said = {
            "export": _main("export", "--csv", str(full / "csv"), str(path)),
            "report": _main("report", str(path), "--out", str(full / "r.pdf")),
            "log": _main("--log-dir", str(full / "logs" / "deeper"), "inspect", str(path)),
        }
    for what, done in said.items():
        text = done.stdout + done.stderr
        assert "disk is full" in text and "No space left" not in text and "Traceback" not in text, (what, text)
    assert said["export"].returncode == 2 and said["report"].returncode == 2
    assert "nothing of it was kept" in said["export"].stdout + said["export"].stderr  # fifth tester: a partial CSV
    assert not (tmp_path / "full" / "csv").exists()  # a tester found the empty folder the failed export had made
    assert said["log"].returncode == 0  # the command itself runs; only its log file is not written


def test_export_that_fills_the_disk_midway_keeps_nothing_and_report_names_a_read_only_disk(tmp_path):
    """Fifth fresh tester of issue 12: an export the disk could not hold left a partial light.csv; `report --out`
    into a read-only folder said "not writable by this account" (root: the disk is read-only)."""
    path = write_session(tmp_path, 20.0)  # some MB of CSV: more than the disk below has
    disk = tmp_path / "small"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("a small tmpfs cannot be mounted here (needs root)")
    try:
        done = _main("export", "--csv", str(disk / "csv"), str(path))
        assert done.returncode == 2 and "the disk is full" in done.stdout + done.stderr, done.stderr[-1000:]
        assert not (disk / "csv").exists()  # all of it or nothing: the folder it created too (seventh session)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        done = _main("report", str(path), "--out", str(disk / "r.pdf"))
        assert done.returncode == 2 and "is on a read-only disk" in done.stderr, done.stderr[-1000:]
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)



def test_a_failed_export_removes_the_folders_it_made_and_only_those(tmp_path):
    """Seventh session (a tester: `export` on a full disk left an empty csv/ folder): the folders an export creates
    go with it when it fails; a folder that was there before stays, with what it held."""
    path = write_session(tmp_path, 20.0)
    disk = tmp_path / "small"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("a small tmpfs cannot be mounted here (needs root)")
    try:
        (disk / "mine").mkdir()
        (disk / "mine" / "notes.txt").write_text("the user's")
        for out, gone, kept in ((disk / "a" / "b" / "csv", disk / "a", None),
                                (disk / "mine" / "csv", disk / "mine" / "csv", disk / "mine" / "notes.txt"),
                                (disk / "mine", None, disk / "mine" / "notes.txt")):
            done = _main("export", "--csv", str(out), str(path))
            assert done.returncode == 2 and "nothing of it was kept" in done.stdout + done.stderr, done.stderr[-1000:]
            assert gone is None or not gone.exists(), out
            assert kept is None or kept.read_text() == "the user's", out
        assert sorted(p.name for p in disk.iterdir()) == ["mine"]
        assert sorted(p.name for p in (disk / "mine").iterdir()) == ["notes.txt"]
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
