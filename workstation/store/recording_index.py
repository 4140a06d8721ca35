"""The clinic store's index of recordings: the recordings root, each session's recording and checksum, its copy on
the clinic's share, and checking a file against the index (mixed into ClinicStore)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

from workstation.checksum import sha256_of
from workstation.errors import UserError
from workstation.store.db import IntegrityError
from workstation.store.rows import SHA256, now_text
from workstation.words import first_upper

log = logging.getLogger(__name__)


class RecordingIndex:
    """The clinic store's index of recordings (a mixin of ClinicStore: it uses the store's connection,
    `transaction`, `_one` and `_all`)."""

    def settle_recordings_root(self, wanted: Path, *, write: bool) -> Path | None:
        """The one rule for THIS workstation's recordings root (each workstation records to its own disk; another
        room's root is never read or changed here): the folder in force (`wanted`) is adopted when the store records
        none for this workstation yet (the store-wide root of a store from before revision 0005 stays the root of
        the recordings indexed then), or when none of the recordings indexed relative to its root is under it any
        more while at least one is under `wanted` (the recordings were moved there). Otherwise the recorded root
        stays, since the paths linked relative to it depend on it; a typo'd folder holds no recordings and is never
        adopted. `write=False` adopts for this connection only. Returns the root in force. (`store
        set-recordings-root` changes it explicitly.)"""
        wanted = wanted.expanduser().absolute()
        recorded = self._own_root()  # a store-wide root from before revision 0005 is not this workstation's
        if recorded == wanted:
            return recorded
        if recorded is not None and not (self.recordings_found_under(recorded)[0] == 0
                                         and self.recordings_found_under(wanted)[0] > 0):
            log.info("recordings root of %s on %s stays %s (the recordings folder in force, %s, does not hold its "
                     "recordings)", self.path, self.workstation, recorded, wanted)
            return recorded
        if write:
            log.info("recordings root of %s on %s: %s -> %s (%s)", self.path, self.workstation, recorded, wanted,
                     "first set" if recorded is None else "the recordings were moved there")
            self.set_recordings_root(wanted)
        else:
            self._root_for_now = wanted
        return wanted

    def _mine(self) -> list[tuple[Path, str | None]]:
        """(relative path, held_by) of every recording indexed relative to this workstation's root: its own, and
        those indexed before each workstation had its own root (held_by NULL, relative to meta's root)."""
        return [(Path(r["path"]), r["held_by"]) for r in
                self._all("SELECT path, held_by FROM recordings WHERE held_by IS NULL OR held_by = ?",
                          (self.workstation,)) if not Path(r["path"]).is_absolute()]

    def recordings_found_under(self, root: Path) -> tuple[int, int]:
        """(found, indexed): how many of the recordings indexed relative to this workstation's recordings root
        (its own, and those indexed before each workstation had its own root) exist as files under `root`, and how
        many are indexed so. Other rooms' recordings are not counted: they are on their own disks."""
        relative = self._mine()
        return sum((root / p).is_file() for p, _ in relative), len(relative)

    def _own_root(self) -> Path | None:
        row = self._one("SELECT root FROM recordings_roots WHERE workstation = ?", (self.workstation,))
        return Path(row["root"]) if row else None

    def _legacy_root(self) -> Path | None:
        row = self._one("SELECT value FROM meta WHERE key = 'recordings_root'")
        return Path(row["value"]) if row else None

    @property
    def recordings_root(self) -> Path | None:
        """THIS workstation's recordings folder (absolute), the one recording paths it indexes are relative to, or
        None if none is recorded. A store from before each workstation had its own root (revision 0005) answers
        with the store-wide root it recorded until this workstation records its own."""
        if self._root_for_now is not None:
            return self._root_for_now
        return self._own_root() or self._legacy_root()

    def recordings_roots(self) -> dict[str, Path]:
        """Every workstation's recordings folder the store records, by host name."""
        return {r["workstation"]: Path(r["root"]) for r in
                self._all("SELECT workstation, root FROM recordings_roots ORDER BY workstation")}

    def set_recordings_root(self, root: Path | str) -> None:
        """Record (or, after moving this workstation's recordings folder, change) THIS workstation's recordings
        root; no other workstation's root changes. Recordings indexed before each workstation had its own root
        (revision 0005) whose files are under `root` become this workstation's (their paths stay as they are);
        the others keep the store-wide root they were indexed with."""
        root = Path(root).expanduser().absolute()
        legacy = [p for p, held_by in self._mine() if held_by is None and (root / p).is_file()]
        with self.transaction() as c:
            c.execute("INSERT INTO recordings_roots (workstation, root, set_at) VALUES (?, ?, ?) "
                      "ON CONFLICT (workstation) DO UPDATE SET root = excluded.root, set_at = excluded.set_at",
                      (self.workstation, str(root), now_text()))
            for p in legacy:
                c.execute("UPDATE recordings SET held_by = ? WHERE path = ? AND held_by IS NULL",
                          (self.workstation, str(p)))
        self._root_for_now = None

    def _root_of(self, held_by: str | None, relative: Path) -> Path | None:
        if held_by is None:  # indexed before revision 0005: relative to the store-wide root of then
            legacy, mine = self._legacy_root(), self.recordings_root
            for root in (legacy, mine):  # where the file is: still there, or moved with this workstation's folder
                if root is not None and (root / relative).is_file():
                    return root
            return legacy or mine
        if held_by == self.workstation:
            return self.recordings_root
        return self.recordings_roots().get(held_by)

    def recording_path(self, session_id: int) -> Path | None:
        """The absolute path of the session's recording (a relative one is taken from the recordings root of the
        workstation that holds it, or, in a store that records none, from the current folder as older versions
        did). Another room's recording is a path on that room's disk."""
        row = self._one("SELECT path, held_by FROM recordings WHERE session_id = ?", (session_id,))
        if row is None:
            return None
        path = Path(row["path"])
        return path if path.is_absolute() else (self._root_of(row["held_by"], path) or Path.cwd()) / path

    def recording_holder(self, session_id: int) -> str | None:
        """The host name of the workstation whose disk holds the session's recording (None when unknown: indexed
        by absolute path before revision 0005, or not indexed)."""
        row = self._one("SELECT held_by, copy_from FROM recordings WHERE session_id = ?", (session_id,))
        return (row["held_by"] or row["copy_from"]) if row else None

    def session_for_recording(self, path: Path | str) -> int | None:
        """The id of the session whose recording is the file at `path` (the file on the workstation that made it, or
        its verified copy on the clinic's share), or None if the store does not index it."""
        wanted = Path(path).expanduser().resolve()
        for row in self._all("SELECT session_id, shared_path FROM recordings"):
            found = self.recording_path(row["session_id"])
            if found is not None and found.resolve() == wanted:
                return int(row["session_id"])
            if row["shared_path"] and Path(row["shared_path"]).resolve() == wanted:
                return int(row["session_id"])
        return None

    def link_recording(self, session_id: int, path: Path | str, sha256: str) -> None:
        """Index the session's recording, made on this workstation: stored relative to this workstation's
        recordings root when it lies under it (so the store and the folder can move together), else as an
        absolute path; never relative to the current folder. The row names this workstation as its holder."""
        path = Path(path).expanduser().absolute()
        root = self.recordings_root
        if root is not None and path.is_relative_to(root):
            path = path.relative_to(root)
            if self._own_root() is None and self._root_for_now is None:
                self.set_recordings_root(root)  # the store-wide root of an older store becomes this one's own
        sha256 = sha256.lower()
        if not SHA256.match(sha256):
            raise UserError("A recording's checksum must be a SHA-256: 64 hexadecimal characters.")
        try:
            with self.transaction() as c:
                c.execute("INSERT INTO recordings (session_id, path, sha256, held_by) VALUES (?, ?, ?, ?)",
                          (session_id, str(path), sha256, self.workstation))
        except IntegrityError as exc:
            raise UserError("The recording was not linked: the session must exist and have no recording linked "
                            "yet.") from exc

    def recording(self, session_id: int) -> tuple[str, str] | None:
        """(path, sha256) of the session's recording, if one is linked."""
        row = self._one("SELECT path, sha256 FROM recordings WHERE session_id = ?", (session_id,))
        return (row["path"], row["sha256"]) if row else None

    def session_label(self, session_id: int) -> str:
        """The session as users read it: "session 3 of the course (record no. 17)" (store.session_label)."""
        from workstation.store.session_label import session_label

        return session_label(self._conn, session_id)

    # ---- the clinic's recordings share (workstation/recording/share.py copies; these keep the index) ------------

    def queue_share_copy(self, session_id: int, workstation: str) -> None:
        """Mark the session's recording, not yet copied, to be copied to the clinic's share by `workstation` (the
        host that holds the file)."""
        with self.transaction() as c:
            c.execute("UPDATE recordings SET copy_from = ? WHERE session_id = ? AND shared_path IS NULL "
                      "AND (copy_from IS NULL OR copy_from <> ?)", (workstation, session_id, workstation))

    def recordings_to_share(self, workstation: str, *, queue: bool = True) -> list[tuple[int, Path, str]]:
        """(session id, absolute local path, sha256) of each recording `workstation` has still to copy to the share,
        oldest first. Recordings nobody queued yet (from before the share, or linked when a crashed session was
        closed) whose file is here count as this workstation's; with `queue` (a copier's pass) they are queued for it,
        without (`recording sync --list`, a read-only store) nothing is written."""
        unqueued = []
        for row in self._all("SELECT session_id FROM recordings WHERE copy_from IS NULL AND shared_path IS NULL"):
            local = self.recording_path(row["session_id"])
            if local is not None and local.is_file():
                unqueued.append(row["session_id"])
                if queue:
                    self.queue_share_copy(row["session_id"], workstation)
        wanted = "copy_from = ?" if queue or not unqueued else \
            f"(copy_from = ? OR session_id IN ({', '.join(str(int(i)) for i in unqueued)}))"
        rows = self._all(f"SELECT session_id, sha256 FROM recordings WHERE {wanted} AND shared_path IS NULL "  # noqa: S608 - ids are ints
                         "ORDER BY session_id", (workstation,))
        return [(r["session_id"], self.recording_path(r["session_id"]), r["sha256"]) for r in rows]

    def crashed_unindexed(self) -> list[dict]:
        """Sessions closed as crashed whose recording (its path as the journal wrote it) is not indexed yet: the
        crash recovery ran where the file is not (another room), or could not read it. Each: id, course_id,
        recording_path, outcome_note, room."""
        return [dict(r) for r in self._all(
            "SELECT s.id, s.course_id, s.recording_path, s.outcome_note, s.room FROM sessions s "
            "LEFT JOIN recordings r ON r.session_id = s.id WHERE s.state = 'crashed' "
            "AND s.recording_path IS NOT NULL AND r.session_id IS NULL ORDER BY s.id")]

    def crashed_elsewhere(self, here: Collection[str] = ()) -> list[tuple[int, str]]:
        """(session id, where) of each crashed session's recording that is on another workstation's disk and not
        yet on the clinic's share: not indexed and not on this disk (`where` = the room the session ran in), or
        indexed by another workstation and not copied yet (`where` = that workstation). `here`: this workstation's
        room names (waiting.rooms_here): a session that ran here whose file is not on this disk is not elsewhere
        (waiting.missing_words says what it is)."""
        found = [(r["id"], r["room"] or "another workstation") for r in self.crashed_unindexed()
                 if not Path(r["recording_path"]).is_file() and r["room"] not in here]
        for r in self._all("SELECT r.session_id, r.held_by, r.copy_from FROM recordings r JOIN sessions s ON "
                           "s.id = r.session_id WHERE s.state = 'crashed' AND r.shared_path IS NULL"):
            holder = r["held_by"] or r["copy_from"]
            if holder is not None and holder != self.workstation:
                found.append((r["session_id"], holder))
        return sorted(found)

    def mark_shared(self, session_id: int, shared_path: Path) -> None:
        """The recording's copy at `shared_path` (absolute) on the clinic's share was verified."""
        with self.transaction() as c:
            c.execute("UPDATE recordings SET shared_path = ?, shared_at = ? WHERE session_id = ?",
                      (str(Path(shared_path).absolute()), now_text(), session_id))

    def clinic_share(self) -> Path | None:
        """The clinic's recordings share the store records (clinic-wide: recorded at the first verified copy there,
        changed only by `store set-recordings-root --clinic-share` after a write there was read back), or None
        before any verified copy."""
        row = self._one("SELECT value FROM meta WHERE key = 'clinic_recordings'")
        return Path(row["value"]) if row else None

    def adopt_clinic_share(self, share: Path | str) -> Path:
        """Record `share` as the clinic's recordings share unless one is recorded already (another room's first
        verified copy may come first); returns the share recorded. Called after the first verified copy there."""
        with self.transaction("the clinic's recordings share set") as c:
            c.execute("INSERT INTO meta (key, value) VALUES ('clinic_recordings', ?) ON CONFLICT (key) DO NOTHING",
                      (str(Path(share).expanduser().absolute()),))
        recorded = self.clinic_share()
        assert recorded is not None
        return recorded

    def shares_found_under(self, share: Path) -> tuple[int, int]:
        """(found, copied): how many verified copies on the clinic's recorded share exist under `share` at the same
        place relative to it, and how many copies the store records there."""
        old = self.clinic_share()
        rows = [Path(r["shared_path"]) for r in self._all("SELECT shared_path FROM recordings WHERE shared_path IS "
                                                           "NOT NULL")]
        under = [p.relative_to(old) for p in rows if old is not None and p.is_relative_to(old)]
        return sum((share / p).is_file() for p in under), len(under)

    def set_clinic_share(self, share: Path | str) -> None:
        """Record (or change, for every room) the clinic's recordings share; the verified copies indexed under the
        old one are re-pointed to the same places under the new one."""
        share = Path(share).expanduser().absolute()
        old = self.clinic_share()
        with self.transaction("the clinic's recordings share set") as c:
            c.execute("INSERT INTO meta (key, value) VALUES ('clinic_recordings', ?) "
                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(share),))
            if old is not None and old != share:
                for r in self._all("SELECT session_id, shared_path FROM recordings WHERE shared_path IS NOT NULL"):
                    if Path(r["shared_path"]).is_relative_to(old):
                        c.execute("UPDATE recordings SET shared_path = ? WHERE session_id = ?",
                                  (str(share / Path(r["shared_path"]).relative_to(old)), r["session_id"]))

    def shared_path(self, session_id: int) -> Path | None:
        """Where the session's recording was copied on the clinic's share, or None (not copied, or no recording)."""
        row = self._one("SELECT shared_path FROM recordings WHERE session_id = ?", (session_id,))
        return Path(row["shared_path"]) if row is not None and row["shared_path"] else None

    def verify_recording(self, session_id: int, root: Path | None = None, *, file: Path | None = None) -> bool:
        """Recompute the recording's SHA-256 and compare it with the index. The file checked: `file` if given (e.g.
        its copy on the clinic's share), else a relative path taken from `root` if given, else from the store's
        recordings root (recording_path). UserError when none is linked or the file cannot be read."""
        linked = self.recording(session_id)
        if linked is None:
            raise UserError(f"{first_upper(self.session_label(session_id))} has no recording linked.")
        path = file if file is not None else root / linked[0] if root is not None else \
            self.recording_path(session_id)
        assert path is not None
        try:
            return sha256_of(path) == linked[1]
        except OSError as exc:
            raise UserError(f"The recording {path} could not be read ({exc.strerror}).") from exc
