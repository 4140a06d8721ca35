"""Recordings for the whole clinic: each workstation records locally (the recorder's guarantees stay local), then
copies every closed recording, with its .sha256 and .sig, to the clinic's recordings share (`paths.clinic_recordings`
in the settings) and verifies the copy there before the store's index says it is shared.

How one recording is copied (`copy_verified`): each file is written under a temporary name on the share, fsynced,
then renamed (the .sha256 and .sig first, the recording last, so a reader of the share never finds a recording
without them); the folder is synced; then the copy's SHA-256 and signature are checked there with the same code as
`inspect` and replay (workstation.recording.summary.check_checksum). A copy that does not verify is removed from the
share and copied again later. The local files are only read: nothing here deletes or changes them.

Who copies (`ShareCopier`): a small worker thread per store, never the GUI thread and never the session's save. The
store knows what is still to copy (`recordings.copy_from` / `shared_path`, ClinicStore.recordings_to_share), so
copies still pending when the program stopped are resumed at the next start, and `main.py recording sync` lists or
retries them. A failure (the share not mounted, permission denied, the share full, a copy that does not verify) is
retried with a growing delay (RETRY_FIRST_S doubling up to RETRY_MAX_S) and said in `ShareStatus.text()`: the
window shows it without a dialog, the headless runner prints it in one line.

Where to (issue 17's fresh tester): the store records the clinic's share only at its first verified copy there (or
`store set-recordings-root --clinic-share` after a write read back: share_checks.probe_share); each pass of a copier
re-reads it, so a share moved from another room is followed without a restart and the window names the current one.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from workstation.errors import UserError
from workstation.keys import workstation_name
from workstation.processes import process_alive
from workstation.recording.format import checksum_path, sidecar_paths
from workstation.recording.summary import check_checksum
from workstation.words import counted, first_upper

log = logging.getLogger(__name__)

RETRY_FIRST_S = 5.0  # team default: a share that blinked is tried again soon
RETRY_MAX_S = 60.0  # team default: a share that is down is tried once a minute, never more often
IDLE_POLL_S = 30.0  # team default: with nothing pending, a pass this often (recordings linked by other paths, such as
# crashed sessions', and the clinic's share as the store records it now: a share moved from another room is followed)

__all__ = ["RETRY_FIRST_S", "RETRY_MAX_S", "ShareCopier", "ShareProblem", "ShareStatus", "copy_verified",
           "recording_saved"]


class ShareProblem(Exception):
    """A recording could not be copied to the share, in words. `share_down`: the share itself failed (not
    reachable, not writable, full), so the other recordings wait too."""

    def __init__(self, text: str, *, share_down: bool) -> None:
        super().__init__(text)
        self.share_down = share_down


def os_words(exc: OSError, share: Path) -> str:
    """An OSError on the share as a sentence (never the library's text alone)."""
    code = exc.errno
    if code in (errno.ENOENT, errno.ENOTDIR, errno.ESTALE, errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ETIMEDOUT,
                errno.ENOTCONN, errno.EIO):
        return f"the share {share} is not reachable ({exc.strerror or exc}): is it mounted?"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied on the share {share}: this workstation's account may not write there"
    if code == errno.EROFS:
        return f"the share {share} is read-only: it must be mounted read-write"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"the share {share} is full: free space there"
    return f"the share {share} could not be written ({exc.strerror or exc})"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some network file systems cannot sync a folder; the files themselves were synced
    finally:
        os.close(fd)


def part_path(target: Path) -> Path:
    """The temporary name `target` is written under until it is complete: `.<name>.<workstation>.<pid>.part` beside
    it, so two workstations or two programs writing the same name into one folder never write into each other's."""
    return target.with_name(f".{target.name}.{workstation_name()}.{os.getpid()}.part")


def remove_stale_parts(target: Path) -> None:
    """Remove the temporary files of `target` that this workstation left when a program of it stopped in the middle
    (named with this workstation's exact name and the id of a process that no longer runs); another workstation's,
    a running program's and any other name are left alone. OSError if the folder refuses."""
    own = re.compile(rf"\.{re.escape(target.name)}\.{re.escape(workstation_name())}\.([0-9]{{1,10}})\.part")
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.part"):
        found = own.fullmatch(stale.name)
        if found and not process_alive(f"{found[1]}:?"):  # its start time unknown: any process of that pid
            stale.unlink(missing_ok=True)


def _copy_file(src: Path, target: Path) -> None:
    """Copy `src` to `target`: a temporary name beside it, written, fsynced, renamed. OSError (the temporary file
    removed) if the share refuses or fills up."""
    remove_stale_parts(target)
    tmp = part_path(target)
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 4 * 2**20)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def _remove_copy(dest: Path) -> None:
    for f in (dest, *sidecar_paths(dest)):
        try:
            f.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("a copy on the share that did not verify could not be removed: %s (%s)", f, exc.strerror)


def _folders_to_make(folder: Path, share: Path) -> list[Path]:
    """The folders between `share` and `folder` (itself included) that do not exist yet, deepest first: what a copy
    into `folder` creates, and so what a failed copy removes again (never a folder that was already there)."""
    made: list[Path] = []
    while folder != share and share in folder.parents and not folder.exists():
        made.append(folder)
        folder = folder.parent
    return made


def _remove_folders(made: list[Path]) -> None:
    """Remove the folders a failed copy created (deepest first), each only if empty: what another copy or room put
    there meanwhile is kept."""
    for folder in made:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError as exc:  # not empty (another copy wrote there meanwhile), or the share went away
            log.info("a folder a failed copy created on the share is kept: %s (%s)", folder, exc.strerror)
            break


def _sha_saved(h5_path: Path) -> str:
    """The SHA-256 in the recording's .sha256 (lower case; '' if it holds none). OSError if it cannot be read."""
    words = checksum_path(h5_path).read_text(encoding="ascii", errors="replace").split()
    return words[0].lower() if words else ""


def copy_verified(local: Path, share: Path, relative: Path, sha256: str, *,
                  after_copy: Callable[[Path], None] | None = None) -> Path:
    """Copy the closed recording `local` (and its .sha256 and .sig) to `share / relative` and verify the copy there.
    `sha256` is the store's index of it. Returns the verified copy's path. `after_copy(dest)` is called between the
    copy and the check (a test seam: the check must catch whatever happens there). Raises ShareProblem in words;
    the local files are only read. A copy that fails leaves nothing it created on the share (its files, and the
    folders it made that are still empty); what was there before is kept."""
    if not share.is_dir():
        raise ShareProblem(f"the share {share} is not reachable (no such folder): is it mounted?", share_down=True)
    missing = [f.name for f in (local, *sidecar_paths(local)) if not f.is_file()]
    if missing:
        raise ShareProblem(f"the recording {local} cannot be copied: {', '.join(missing)} missing on this "
                           "workstation", share_down=False)
    try:
        saved = _sha_saved(local)
    except OSError as exc:
        raise ShareProblem(f"{checksum_path(local)} cannot be read ({exc.strerror})", share_down=False) from exc
    if saved != sha256.lower():
        raise ShareProblem(f"the recording {local.name} is not copied: its .sha256 differs from the store's index "
                           f"(`{sync_command()}` lists it; `inspect` checks the file)", share_down=False)
    dest = share / relative
    made: list[Path] = []
    try:
        if dest.is_file() and _sha_saved(dest) == sha256.lower() and check_checksum(dest).intact:
            return dest  # copied before (the store was not told: the program stopped in between)
        made = _folders_to_make(dest.parent, share)
        dest.parent.mkdir(parents=True, exist_ok=True)
        for src in (*sidecar_paths(local), local):  # the recording last: never on the share without its sidecars
            _copy_file(src, dest.parent / src.name)
        _fsync_dir(dest.parent)
        if after_copy is not None:
            after_copy(dest)
        check = check_checksum(dest)
    except OSError as exc:  # the share went away or refused (full), while copying or while the copy was read back
        _remove_copy(dest)  # never a .sha256 and .sig there without their recording (fourth fresh tester)
        _remove_folders(made)  # nor an empty day folder it made (fresh tester of the integrity checks)
        raise ShareProblem(os_words(exc, share), share_down=True) from exc
    if not check.intact:
        _remove_copy(dest)
        _remove_folders(made)
        raise ShareProblem(f"the copy of {local.name} on the share did not verify ({check.text}); it was removed "
                           "from the share and will be copied again (the recording on this workstation is kept)",
                           share_down=False)
    return dest


def sync_command() -> str:
    """The `recording sync` command line, as this program is called (progname)."""
    from workstation.progname import command

    return command("recording sync")


@dataclass(frozen=True)
class ShareStatus:
    """Where the copies stand: `pending` recordings still to copy to `share`, `copied` since the copier started,
    `problem` (a sentence) when the last try failed, `retry_in_s` until the next try then; `elsewhere`: (the
    session as users read it, store.session_label; room or workstation) of crashed sessions' recordings still on another workstation's disk, not yet copied
    (ClinicStore.crashed_elsewhere); `configured`: this workstation's setting (paths.clinic_recordings) when it
    names another folder than `share`, the clinic's share the store records now (where the copies go)."""

    share: Path
    pending: int
    copied: int = 0
    problem: str | None = None
    retry_in_s: float | None = None
    elsewhere: tuple[tuple[str, str], ...] = ()
    configured: Path | None = None
    missing: bool = False  # a crashed session's recording recorded here is not on this disk (waiting.missing_here)

    def text(self) -> str:
        """One line for the window and the headless runner ('' when nothing is pending, nothing failed, no
        crashed session's recording waits on another workstation and the settings name the clinic's share)."""
        return " ".join(t for t in (self._own_text(), self.elsewhere_text(), self.settings_text()) if t)

    def settings_text(self) -> str:
        """When this workstation's settings name another share than the clinic's (moved from another room)."""
        if self.configured is None or self.configured == self.share:
            return ""
        return (f"The clinic's recordings share is now {self.share} (recorded in the store); copies go there. This "
                f"workstation's settings still name {self.configured}: set [paths] clinic_recordings = "
                f"\"{self.share}\" in its settings file.")

    def elsewhere_text(self) -> str:
        """'Session 3 of the course (record no. 12): recording still on room 2's disk, not yet copied.' for each
        such crashed session."""
        return " ".join(f"{first_upper(label)}: recording still on {where}'s disk, not yet copied." for label, where
                        in self.elsewhere)

    def _own_text(self) -> str:
        if self.problem is None:
            if not self.pending:
                return ""
            return f"{_recordings(self.pending)} copying to {self.share}…"
        retry = ""
        if self.retry_in_s is not None:
            every = self.retry_in_s >= RETRY_MAX_S
            retry = f"; retrying {'every' if every else 'in'} {self.retry_in_s:g} s"
        end = "" if (self.problem + retry).endswith(("?", ".", "!")) else "."
        return (f"{_recordings(self.pending)} waiting to copy to {self.share}: {self.problem}{retry}{end} "
                f"The {'other ' if self.missing else ''}recordings are safe on this workstation.")


def _recordings(n: int) -> str:
    return counted(n, "recording")


def sync_once(store: Any, share: Path, *, workstation: str | None = None,
              after_copy: Callable[[Path], None] | None = None) -> tuple[int, list[str], int]:
    """Copy every recording this workstation has still to copy from `store` (a ClinicStore) to `share`, oldest first.
    Returns (copied, problems as sentences, still pending). A share that is down stops the pass (the others would
    fail the same way); a recording whose copy fails alone does not."""
    from workstation.session.journal import recover_recordings_here
    from workstation.session.waiting import waiting_sentences

    who = workstation or store.workstation
    recover_recordings_here(store)  # crashed sessions closed elsewhere whose recording is on this disk
    held = waiting_sentences(store)  # what it could not recover yet: said, and counted as still to copy
    clinic_share, mine = store.clinic_share(), share.expanduser().absolute()
    if clinic_share is not None and clinic_share != mine:
        pending = len(store.recordings_to_share(who))
        return 0, [_not_the_clinics(share, clinic_share), *held], pending + len(held)
    root = store.recordings_root
    todo = store.recordings_to_share(who)
    copied, problems = 0, []
    for session_id, local, sha in todo:
        relative = local.relative_to(root) if root is not None and local.is_relative_to(root) else \
            Path(local.parent.name) / local.name  # recordings/YYYY-MM-DD/<uuid>.h5 keeps its day folder
        made = _folders_to_make((share / relative).parent, share)
        try:
            dest = copy_verified(local, share, relative, sha, after_copy=after_copy)
        except ShareProblem as exc:
            log.warning("recording of session %s not copied to the share: %s", session_id, exc)
            problems.append(str(exc))
            if exc.share_down:
                break
            continue
        if clinic_share is None:  # the clinic's first verified copy: its share from now on, for every room
            clinic_share = store.adopt_clinic_share(mine)
            if clinic_share != mine:  # another room's first copy, to another share, came first
                _remove_copy(dest)
                _remove_folders(made)
                problems.append(_not_the_clinics(share, clinic_share))
                break
        store.mark_shared(session_id, dest)
        log.info("recording of session %s copied to %s and verified", session_id, dest)
        copied += 1
    return copied, problems + held, len(todo) - copied + len(held)


def _not_the_clinics(share: Path, clinic_share: Path) -> str:
    from workstation.progname import command

    return (f"this workstation's share {share} is not the clinic's ({clinic_share}, recorded in the store): set "
            f"[paths] clinic_recordings = \"{clinic_share}\" in this workstation's settings, or, to move the clinic's "
            f"share for every room, `{command('store set-recordings-root --clinic-share DIR')}`; nothing was copied")


_COPIERS: set[ShareCopier] = set()
_COPIERS_LOCK = threading.Lock()


def recording_saved(store: Any, session_id: int) -> None:
    """After a session's recording is closed and linked: queue it for the share and wake the copiers running in this
    process. Never raises (the session is saved already); a queue that could not be written is picked up by the
    copier's next pass all the same (ClinicStore.recordings_to_share)."""
    try:
        store.queue_share_copy(session_id, store.workstation)
    except (UserError, OSError) as exc:
        log.warning("recording of session %s not queued for the share: %s", session_id, exc)
    with _COPIERS_LOCK:
        copiers = list(_COPIERS)
    for copier in copiers:
        copier.wake()


class ShareCopier:
    """The copy worker of one store: `start()` runs passes of `sync_once` on its own thread, at once, whenever
    `wake()` is called (a recording was saved), after a failure with a growing delay (RETRY_FIRST_S … RETRY_MAX_S),
    and every IDLE_POLL_S otherwise. `on_status(ShareStatus)` is called on the worker thread after each pass (the
    window turns it into a Qt signal). `open_store()` returns a new ClinicStore (the worker's own connection).
    `share` is this workstation's setting; each pass copies to the clinic's share as the store records it at that
    moment (moved from any room by `store set-recordings-root --clinic-share`), to `share` only until the store
    records one (its first verified copy); `self.share` is the share of the last pass."""

    def __init__(self, open_store: Callable[[], Any], share: Path, *,
                 on_status: Callable[[ShareStatus], None] | None = None, retry_first_s: float = RETRY_FIRST_S,
                 retry_max_s: float = RETRY_MAX_S, after_copy: Callable[[Path], None] | None = None) -> None:
        self.open_store, self.configured = open_store, Path(share).expanduser().absolute()
        self.share = self.configured
        self.on_status = on_status
        self.retry_first_s, self.retry_max_s = retry_first_s, retry_max_s
        self.after_copy = after_copy
        self.status = ShareStatus(self.share, 0)
        self.passes = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._copied = 0

    def sync(self) -> ShareStatus:
        """One pass on the calling thread (the worker's, or `recording sync --once`)."""
        from workstation.session.waiting import missing_here, rooms_here

        try:
            store = self.open_store()
        except UserError as exc:
            return ShareStatus(self.share, self.status.pending, self._copied, f"the store cannot be opened ({exc})")
        try:
            self.share = store.clinic_share() or self.configured  # re-read at each pass: another room may move it
            copied, problems, pending = sync_once(store, self.share, after_copy=self.after_copy)
            elsewhere = tuple((store.session_label(sid), where) for sid, where in
                              store.crashed_elsewhere(rooms_here(store)))
            missing = bool(missing_here(store))
        except UserError as exc:  # the store refused a write (busy, disabled account, no trail key)
            return ShareStatus(self.share, self.status.pending, self._copied, str(exc))
        except Exception:  # noqa: BLE001 - the worker goes on retrying; the trace goes to the log
            log.exception("copy to the recordings share failed")
            return ShareStatus(self.share, self.status.pending, self._copied,
                               "an unexpected error stopped the copy (the details are in the log)")
        finally:
            store.close()
        self._copied += copied
        return ShareStatus(self.share, pending, self._copied, problems[0] if problems else None,
                           elsewhere=elsewhere, configured=self.configured, missing=missing)

    def start(self) -> ShareCopier:
        with _COPIERS_LOCK:
            _COPIERS.add(self)
        self._thread = threading.Thread(target=self._run, name="recordings-share", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop the worker; True if it ended within `timeout_s` (a copy to a hung share may not: the thread is a
        daemon and never holds the program open)."""
        with _COPIERS_LOCK:
            _COPIERS.discard(self)
        self._stop.set()
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _publish(self, status: ShareStatus) -> None:
        self.status = status
        if self.on_status is not None:
            try:
                self.on_status(status)
            except Exception:  # noqa: BLE001 - a display that fails must not end the copies
                log.exception("share status not shown")

    def _run(self) -> None:
        delay = self.retry_first_s
        while not self._stop.is_set():
            self._wake.clear()
            status = self.sync()
            self.passes += 1
            if status.problem is None:
                delay, wait = self.retry_first_s, IDLE_POLL_S
            else:
                wait = delay
                status = replace(status, retry_in_s=delay)
                delay = min(delay * 2, self.retry_max_s)
            self._publish(status)
            self._wake.wait(wait)


RUN_WAIT_S = 30.0  # team default: how long the headless runner waits for its copy before it ends anyway


def copy_after_run(share: Path, recording: Path, sha256: str, store_path: Path | None, *,
                   timeout_s: float = RUN_WAIT_S) -> str:
    """The headless runner's copy of its (training) recording to `share`, after the visit is closed: one pass on a
    worker thread, waited for at most `timeout_s` (a hung network mount cannot hold the runner). With `store_path`
    (a kept training store) its pending copies are copied and indexed; without, the one file is copied. Returns one
    line for the runner to print; never raises."""
    result: list[str] = []

    def work() -> None:
        try:
            if store_path is not None:
                from workstation.store import ClinicStore

                status = ShareCopier(lambda: ClinicStore.open(store_path, training=True), share).sync()
                retry = f"`{sync_command()} --training --store {store_path} --clinic-recordings {share}` retries it"
                result.append(f"share: {status.text()} {retry}" if status.problem else
                              f"share: recording copied to {share} and verified (checksum and signature)")
                return
            dest = copy_verified(recording, share, Path(recording.parent.name) / recording.name, sha256)
            result.append(f"share: recording copied to {dest} and verified (checksum and signature)")
        except ShareProblem as exc:
            result.append(f"share: recording not copied: {exc}. It is kept at {recording}.")
        except Exception as exc:  # noqa: BLE001 - the session is saved: its copy failing must not end the runner
            log.exception("copy to the share failed")
            result.append(f"share: recording not copied ({type(exc).__name__}); it is kept at {recording}.")

    worker = threading.Thread(target=work, name="recordings-share-run", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not result:
        return (f"share: the copy to {share} did not finish within {timeout_s:g} s (the share may not answer); the "
                f"recording is kept at {recording}.")
    return result[0]
