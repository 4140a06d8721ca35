"""Opening the store's SQLite file where the system refuses it (tester's report: `--store` on a read-only file system
or naming a folder stopped every command with "an internal error stopped the command" and OSError /
IsADirectoryError in the log): every refusal (read-only disk, a folder, no rights, a missing or impossible folder)
is a sentence naming the store and what to do (connection.open_failure), exit 2, never a traceback. A command that
only reads (verify, trail verify, lists) still reads a store on a read-only disk (SQLite's mode=ro / immutable).

Real SQLite files on a real read-only file system (a tmpfs mounted, then remounted read-only; root only), and no
rights simulated by running the command as root without CAP_DAC_OVERRIDE (setpriv), or as an ordinary account."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from workstation.errors import UserError
from workstation.store import ClinicStore
from workstation.store.connection import open_failure

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ["--scenario", "combined-uneventful"]


def _cli(tmp_path: Path, *args: str, caps: list[str] | None = None) -> subprocess.CompletedProcess:
    """main.py run for real, with this test's user folders (its keys: the trail verifies) and its own log folder;
    `caps`: the command run as root without those capabilities (setpriv)."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "QT_QPA_PLATFORM": "offscreen"}
    argv = [sys.executable, str(ROOT / "main.py"), "--log-dir", str(tmp_path / "logs"), *args]
    if caps:
        argv = ["setpriv", "--bounding-set=" + ",".join(f"-{c}" for c in caps), *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env, cwd=ROOT)


def _said(done: subprocess.CompletedProcess, *words: str, code: int = 2) -> str:
    out = done.stdout + done.stderr
    assert "internal error" not in out and "Traceback" not in out and "Errno" not in out, out[-2000:]
    for w in words:
        assert w in out, out[-2000:]
    assert done.returncode == code, out[-2000:]
    return out


@pytest.fixture
def disk(tmp_path):
    """A real file system of its own (tmpfs), writable until `disk.freeze()` remounts it read-only; unmounted at the
    end whatever happens. Skipped where mounting is not permitted (not root, or a container without the right)."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a read-only file system needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"mount not permitted here: {made.stderr.decode(errors='replace').strip()}")

    class Disk:
        path = where

        @staticmethod
        def freeze() -> None:
            subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)

    try:
        yield Disk
    finally:
        if subprocess.run(["umount", str(where)]).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=False)


def _clinic_store(path: Path) -> Path:
    ClinicStore.open(path, training=False).close()
    return path


def test_every_refusal_of_the_system_is_a_sentence_naming_the_store():
    for code in (errno.EROFS, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.ENOENT, errno.ENOSPC,
                 errno.EDQUOT, errno.EIO, errno.ENAMETOOLONG, errno.ELOOP, errno.EMFILE):
        exc = OSError(code, os.strerror(code), "/x/clinic.sqlite3")
        words = str(open_failure(Path("/x/clinic.sqlite3"), exc))
        assert words.startswith("The clinic store /x/clinic.sqlite3 cannot be opened: "), words
        assert os.strerror(code) not in words and "Errno" not in words, words
        assert words.endswith(".") and ("Give" in words or "Check" in words or "Free" in words), words
    assert "its disk is full" in str(open_failure("/x", OSError(errno.ENOSPC, "")))  # the write failures' words
    assert "it is read-only" in str(open_failure("/x", OSError(errno.EROFS, "")))


def test_a_store_on_a_read_only_disk_is_refused_for_writing_in_words(disk):
    existing = _clinic_store(disk.path / "clinic.sqlite3")
    disk.freeze()
    for path in (existing, disk.path / "new.sqlite3", disk.path / "sub" / "new.sqlite3"):
        with pytest.raises(UserError) as refused:
            ClinicStore.open(path, training=False)
        assert f"The clinic store {path} cannot be opened: it is read-only (its disk is mounted read-only)" in str(
            refused.value)
        assert "--store" in str(refused.value)
    assert sorted(p.name for p in disk.path.iterdir()) == ["clinic.sqlite3"]


def test_commands_that_only_read_still_read_a_store_on_a_read_only_disk(disk, tmp_path):
    store = _clinic_store(disk.path / "clinic.sqlite3")
    training = disk.path / "training.sqlite3"
    _said(_cli(tmp_path, "session", "--simulate", *SCENARIO, "--store", str(training)), code=0)
    recording = next(Path(os.environ["XDG_DATA_HOME"]).glob("cicatrix/training-recordings/*/*.h5"))
    disk.freeze()
    with ClinicStore.open(store, training=False, read_only=True) as opened:
        assert opened.trail_findings == []
    _said(_cli(tmp_path, "trail", "verify", "--store", str(store)), "audit trail intact", code=0)
    _said(_cli(tmp_path, "trail", "show", "--last", "2", "--store", str(store)), "meta", code=0)
    _said(_cli(tmp_path, "operators", "list", "--store", str(store)), "no accounts yet", code=0)
    _said(_cli(tmp_path, "devices", "--store", str(store)), "Devices on record (0)", code=0)
    # the store was read (the training recording is not one of this clinic store's: said, exit 1)
    _said(_cli(tmp_path, "verify", str(recording), "--store", str(store)), "SHA-256 matches",
          f"{store} does not index this recording", code=1)
    # ... and a command that writes says so
    _said(_cli(tmp_path, "session", "--simulate", *SCENARIO, "--store", str(training)),
          f"The training store {training} cannot be opened: it is read-only (its disk is mounted read-only)")
    _said(_cli(tmp_path, "session", "--simulate", *SCENARIO, "--store", str(disk.path / "new.sqlite3")),
          "cannot be opened: it is read-only")
    assert sorted(p.name for p in disk.path.iterdir()) == ["clinic.sqlite3", "training.sqlite3"]


def test_a_store_left_with_changes_in_its_wal_on_a_read_only_disk(disk, tmp_path):
    """Not closed cleanly: its -wal holds changes. With its -shm there SQLite reads them; without, it cannot (it would
    have to make one): a sentence, never the store read without its last changes."""
    live = disk.path / "live.sqlite3"
    keeper = sqlite3.connect(live, isolation_level=None)  # holds the WAL open: no checkpoint when the store closes
    keeper.execute("PRAGMA journal_mode = WAL")
    keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()
    try:
        ClinicStore.open(live, training=False).close()  # the whole schema is in live.sqlite3-wal
        assert Path(f"{live}-wal").stat().st_size > 0
        for name, parts in (("whole", ("", "-wal", "-shm")), ("no-shm", ("", "-wal"))):
            for part in parts:
                shutil.copy(f"{live}{part}", disk.path / f"{name}.sqlite3{part}")
    finally:
        keeper.close()
    disk.freeze()
    _said(_cli(tmp_path, "trail", "verify", "--store", str(disk.path / "whole.sqlite3")), "audit trail intact", code=0)
    _said(_cli(tmp_path, "trail", "verify", "--store", str(disk.path / "no-shm.sqlite3")),
          f"The clinic store {disk.path / 'no-shm.sqlite3'} cannot be read here", "not closed cleanly")


def test_a_folder_given_as_the_store(tmp_path):
    folder = tmp_path / "a folder"
    folder.mkdir()
    with pytest.raises(UserError, match="it is a folder, not a file"):
        ClinicStore.open(folder, training=False)
    _said(_cli(tmp_path, "session", "--simulate", *SCENARIO, "--store", str(folder)),
          f"The training store {folder} cannot be opened: it is a folder, not a file", f"{folder}/clinic.sqlite3")
    for command in (["trail", "verify"], ["operators", "list"], ["devices"]):
        _said(_cli(tmp_path, *command, "--store", str(folder)), f"no clinic store at {folder} (a folder is there)")
    assert list(folder.iterdir()) == []


def test_a_store_under_a_file_or_a_too_long_name(tmp_path):
    plain = tmp_path / "notes.txt"
    plain.write_text("a file, not a folder")
    with pytest.raises(UserError, match="a part of its path is a file, not a folder"):
        ClinicStore.open(plain / "clinic.sqlite3", training=False)
    _said(_cli(tmp_path, "session", "--simulate", *SCENARIO, "--store", str(plain / "sub" / "clinic.sqlite3")),
          "a part of its path is a file, not a folder")
    with pytest.raises(UserError, match="its path is too long"):
        ClinicStore.open(tmp_path / ("x" * 300 + ".sqlite3"), training=False)


def _no_rights() -> list[str]:
    """How to run a command without the rights of root over others' files: as root without CAP_DAC_OVERRIDE (and
    the like), or as this ordinary account."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's rights over others' files")
    return ["dac_override", "dac_read_search", "fowner"]


def test_a_store_this_account_may_not_use(tmp_path):
    caps = _no_rights()
    other = 65534 if os.geteuid() == 0 else None  # nobody
    theirs = tmp_path / "theirs"  # a folder of another account, holding its store (0600) and a readable one
    theirs.mkdir()
    private = _clinic_store(theirs / "private.sqlite3")
    shared = _clinic_store(theirs / "shared.sqlite3")
    shared.chmod(0o644)
    locked = tmp_path / "locked"  # this account's store, in a folder it may not write (no -wal, -shm there)
    locked.mkdir()
    _clinic_store(locked / "mine.sqlite3")
    if other is not None:
        for p in (theirs, private, shared, locked):
            os.chown(p, other, -1)
    else:
        private.chmod(0o000)
        theirs.chmod(0o555)
        locked.chmod(0o555)
    try:
        no = "this account may not use it or its folder (permission denied)"
        for store in (private, shared, theirs / "new.sqlite3", theirs / "sub" / "new.sqlite3", locked / "mine.sqlite3"):
            _said(_cli(tmp_path, "session", "--simulate", *SCENARIO, "--store", str(store), caps=caps),
                  f"The training store {store} cannot be opened: {no}")
        for store in (private, shared, locked / "mine.sqlite3"):
            _said(_cli(tmp_path, "trail", "verify", "--store", str(store), caps=caps),
                  f"The clinic store {store} cannot be opened: {no}")
        assert sorted(p.name for p in theirs.iterdir()) == ["private.sqlite3", "shared.sqlite3"]
        assert sorted(p.name for p in locked.iterdir()) == ["mine.sqlite3"]
    finally:
        for p in (theirs, locked, private):
            p.chmod(0o700)


def test_a_store_this_account_may_only_read_is_still_read_by_commands_that_only_read(tmp_path):
    caps = _no_rights()
    store = _clinic_store(tmp_path / "kept" / "clinic.sqlite3")
    store.chmod(0o400)  # its folder is writable: SQLite makes its -shm there, and reads the store in mode=ro
    _said(_cli(tmp_path, "trail", "verify", "--store", str(store), caps=caps), "audit trail intact", code=0)
    _said(_cli(tmp_path, "operators", "list", "--store", str(store), caps=caps), "no accounts yet", code=0)
    _said(_cli(tmp_path, "session", "--simulate", *SCENARIO, "--store", str(store), caps=caps),
          f"The training store {store} cannot be opened: this account may not use it")
    assert store.stat().st_mode & 0o777 == 0o400


def test_a_store_on_a_read_only_disk_that_needs_a_change_before_it_is_read(disk, tmp_path):
    """Its schema mark behind this program's (as after an update of the program): the open would upgrade it, which a
    read-only disk does not allow; said in words, not as a write that failed during the command."""
    from workstation.store import LATEST_VERSION

    store = _clinic_store(disk.path / "clinic.sqlite3")
    with sqlite3.connect(store) as raw:
        raw.execute(f"PRAGMA user_version = {LATEST_VERSION - 1}")
    raw.close()
    disk.freeze()
    _said(_cli(tmp_path, "trail", "verify", "--store", str(store)), f"The clinic store {store} cannot be opened here",
          "it needs a change before it can be read", "Open it once with a command that writes")
