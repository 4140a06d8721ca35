"""The clinic store's index of recordings: the recordings root, each session's recording and checksum, its copy on
the clinic's share, and checking a file against the index (mixed into ClinicStore)."""

from __future__ import annotations

import logging
from pathlib import Path

from workstation.checksum import sha256_of
from workstation.errors import UserError
from workstation.store.db import IntegrityError
from workstation.store.rows import SHA256, now_text

log = logging.getLogger(__name__)


class RecordingIndex:
    """The clinic store's index of recordings (a mixin of ClinicStore: it uses the store's connection,
    `transaction`, `_one` and `_all`)."""

    def settle_recordings_root(self, wanted: Path, *, write: bool) -> Path | None:
        """The one rule for the recordings root: the folder in force (`wanted`) is adopted when the store records
        none yet, or when none of the recordings indexed relative to the recorded root is under it any more while
        at least one is under `wanted` (the recordings were moved there). Otherwise the recorded root stays, since
        the paths linked relative to it depend on it; a typo'd folder holds no recordings and is never adopted.
        `write=False` adopts for this connection only. Returns the root in force. (`store set-recordings-root`
        changes it explicitly.)"""
        wanted = wanted.expanduser().absolute()
        recorded = self.recordings_root
        if recorded == wanted:
            return recorded
        if recorded is not None and not (self.recordings_found_under(recorded)[0] == 0
                                         and self.recordings_found_under(wanted)[0] > 0):
            log.info("recordings root of %s stays %s (the recordings folder in force, %s, does not hold its "
                     "recordings)", self.path, recorded, wanted)
            return recorded
        if write:
            log.info("recordings root of %s: %s -> %s (%s)", self.path, recorded, wanted,
                     "first set" if recorded is None else "the recordings were moved there")
            self.set_recordings_root(wanted)
        else:
            self._root_for_now = wanted
        return wanted

    def recordings_found_under(self, root: Path) -> tuple[int, int]:
        """(found, indexed): how many of the recordings indexed relative to the recordings root exist as files under
        `root`, and how many are indexed so."""
        relative = [Path(r["path"]) for r in self._all("SELECT path FROM recordings")
                    if not Path(r["path"]).is_absolute()]
        return sum((root / p).is_file() for p in relative), len(relative)

    @property
    def recordings_root(self) -> Path | None:
        """The folder recording paths in this store are relative to (absolute), or None if none is recorded."""
        if self._root_for_now is not None:
            return self._root_for_now
        row = self._one("SELECT value FROM meta WHERE key = 'recordings_root'")
        return Path(row["value"]) if row else None

    def set_recordings_root(self, root: Path | str) -> None:
        """Record (or, after moving every recording with the folder, change) the recordings root. Paths already
        linked relative to the old root are then read relative to the new one."""
        with self.transaction() as c:
            c.execute("INSERT INTO meta (key, value) VALUES ('recordings_root', ?) "
                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                      (str(Path(root).expanduser().absolute()),))
        self._root_for_now = None

    def recording_path(self, session_id: int) -> Path | None:
        """The absolute path of the session's recording (a relative one is taken from the recordings root, or,
        in a store that records none, from the current folder as older versions did)."""
        linked = self.recording(session_id)
        if linked is None:
            return None
        path = Path(linked[0])
        return path if path.is_absolute() else (self.recordings_root or Path.cwd()) / path

    def session_for_recording(self, path: Path | str) -> int | None:
        """The id of the session whose recording is the file at `path`, or None if the store does not index it."""
        wanted = Path(path).expanduser().resolve()
        for row in self._all("SELECT session_id FROM recordings"):
            found = self.recording_path(row["session_id"])
            if found is not None and found.resolve() == wanted:
                return int(row["session_id"])
        return None

    def link_recording(self, session_id: int, path: Path | str, sha256: str) -> None:
        """Index the session's recording: stored relative to the recordings root when it lies under it (so the
        store and the folder can move together), else as an absolute path; never relative to the current folder."""
        path = Path(path).expanduser().absolute()
        root = self.recordings_root
        if root is not None and path.is_relative_to(root):
            path = path.relative_to(root)
        sha256 = sha256.lower()
        if not SHA256.match(sha256):
            raise UserError("A recording's checksum must be a SHA-256: 64 hexadecimal characters.")
        try:
            with self.transaction() as c:
                c.execute("INSERT INTO recordings (session_id, path, sha256) VALUES (?, ?, ?)",
                          (session_id, str(path), sha256))
        except IntegrityError as exc:
            raise UserError("The recording was not linked: the session must exist and have no recording linked "
                            "yet.") from exc

    def recording(self, session_id: int) -> tuple[str, str] | None:
        """(path, sha256) of the session's recording, if one is linked."""
        row = self._one("SELECT path, sha256 FROM recordings WHERE session_id = ?", (session_id,))
        return (row["path"], row["sha256"]) if row else None

    # ---- the clinic's recordings share (workstation/recording/share.py copies; these keep the index) ------------

    def queue_share_copy(self, session_id: int, workstation: str) -> None:
        """Mark the session's recording, not yet copied, to be copied to the clinic's share by `workstation` (the
        host that holds the file)."""
        with self.transaction() as c:
            c.execute("UPDATE recordings SET copy_from = ? WHERE session_id = ? AND shared_path IS NULL "
                      "AND (copy_from IS NULL OR copy_from <> ?)", (workstation, session_id, workstation))

    def recordings_to_share(self, workstation: str) -> list[tuple[int, Path, str]]:
        """(session id, absolute local path, sha256) of each recording `workstation` has still to copy to the share,
        oldest first. Recordings nobody queued yet (from before the share, or linked when a crashed session was
        closed) are queued for this workstation when their file is here."""
        for row in self._all("SELECT session_id FROM recordings WHERE copy_from IS NULL AND shared_path IS NULL"):
            local = self.recording_path(row["session_id"])
            if local is not None and local.is_file():
                self.queue_share_copy(row["session_id"], workstation)
        rows = self._all("SELECT session_id, sha256 FROM recordings WHERE copy_from = ? AND shared_path IS NULL "
                         "ORDER BY session_id", (workstation,))
        return [(r["session_id"], self.recording_path(r["session_id"]), r["sha256"]) for r in rows]

    def mark_shared(self, session_id: int, shared_path: Path) -> None:
        """The recording's copy at `shared_path` (absolute) on the clinic's share was verified."""
        with self.transaction() as c:
            c.execute("UPDATE recordings SET shared_path = ?, shared_at = ? WHERE session_id = ?",
                      (str(Path(shared_path).absolute()), now_text(), session_id))

    def shared_path(self, session_id: int) -> Path | None:
        """Where the session's recording was copied on the clinic's share, or None (not copied, or no recording)."""
        row = self._one("SELECT shared_path FROM recordings WHERE session_id = ?", (session_id,))
        return Path(row["shared_path"]) if row is not None and row["shared_path"] else None

    def verify_recording(self, session_id: int, root: Path | None = None) -> bool:
        """Recompute the recording's SHA-256 and compare it with the index. A relative path is taken from `root` if
        given, else from the store's recordings root (recording_path)."""
        linked = self.recording(session_id)
        if linked is None:
            raise UserError(f"Session {session_id} has no recording linked.")
        path = root / linked[0] if root is not None else self.recording_path(session_id)
        assert path is not None
        try:
            return sha256_of(path) == linked[1]
        except OSError as exc:
            raise UserError(f"The recording {path} could not be read ({exc.strerror}).") from exc
