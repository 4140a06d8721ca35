"""The audit trail's anchor outside the database (issue 17): the highest trail row (its number and hash) this
workstation wrote or verified, per store, in the platform's state folder (platformdirs; on Linux
~/.local/state/cicatrix/trail-anchors.json).

Why: the trail's chain proves that no row was removed or changed BEFORE its last row, but not that rows were not
removed from its END. Someone who can write around the program (PostgreSQL's superuser with
`session_replication_role = replica`, which turns triggers off; anyone who can edit an SQLite file and drop its
triggers) can delete the newest trail rows together with the rows they record, and what is left is a shorter chain
that verifies. Only a copy kept outside the database can show it: `trail verify` (trail.verify with `anchor`)
reports "the trail ends at row N but this workstation saw row N+k" as BROKEN. docs/deployment.md says what this does
and does not detect.

The anchor is noted after each write transaction of the clinic's store commits (ClinicStore.transaction, `advance`:
never past a row that is no longer as this workstation saw it) and after `trail verify` finds the trail intact. It only ever rises (several processes of one workstation merge under a file
lock), and it is written after the commit, so it is never ahead of what the store holds: an anchor lost (a power cut
before it was written) finds less, never a false alarm. Training stores are not anchored (they are thrown away).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

from workstation.places import APP_NAME

log = logging.getLogger(__name__)

ANCHOR_FILE_NAME = "trail-anchors.json"


@dataclass(frozen=True)
class Anchor:
    """A trail row this workstation saw: its number (audit_trail.id), its chain hash and when (ISO-8601 UTC)."""

    seq: int
    hash: str
    at: str


def anchor_file() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False)) / ANCHOR_FILE_NAME


def store_key(store: Any) -> str | None:
    """Which store an anchor is for: the clinic store's SQLite file (resolved) or its server URL without password;
    None for a training store (never anchored)."""
    if getattr(store, "role", None) != "clinic":
        return None
    path = store.path
    return str(Path(path).resolve()) if isinstance(path, Path) else str(path)


def head(conn: Any) -> tuple[int, str] | None:
    """The trail's last row (number, hash), None when it is empty."""
    row = conn.execute("SELECT id, hash FROM audit_trail ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def seen(store: Any) -> Anchor | None:
    """The highest trail row this workstation wrote or verified in `store`, None if none (or not anchored)."""
    key = store_key(store)
    if key is None:
        return None
    entry = _read(anchor_file()).get(key)
    if not isinstance(entry, dict):
        return None
    try:
        return Anchor(int(entry["seq"]), str(entry["hash"]), str(entry.get("at", "")))
    except (KeyError, TypeError, ValueError):
        log.warning("trail anchor of %s unreadable; ignored", key)
        return None


def note(store: Any, seq: int, digest: str) -> None:
    """Raise the anchor of `store` to row `seq` (hash `digest`) if it is higher than the one kept. Never raises: an
    anchor that could not be written is logged (it then detects less)."""
    key = store_key(store)
    if key is None:
        return
    path = anchor_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # several processes of this workstation: merge, never lower
            anchors = _read(path)
            old = anchors.get(key)
            if isinstance(old, dict) and isinstance(old.get("seq"), int) and old["seq"] >= seq:
                return
            anchors[key] = {"seq": int(seq), "hash": digest,
                            "at": datetime.now(UTC).isoformat(timespec="seconds")}
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(anchors, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)
    except OSError as exc:
        log.warning("trail anchor not written (%s)", exc)


def advance(store: Any, last: Anchor | None) -> Anchor | None:
    """After a commit of `store` (ClinicStore.transaction): note the trail's end as this connection now sees it,
    unless the row it noted last (`last`) is no longer there as it saw it: then the anchor is left where it is, as
    the evidence `trail verify` reports (a workstation writing on after its trail's end was cut never moves its
    anchor past the cut). ONE statement (the last row and the row of `last`). Returns the anchor now held."""
    rows = store._conn.execute("SELECT id, hash FROM audit_trail WHERE id = ? OR id = (SELECT max(id) FROM "
                               "audit_trail)", (last.seq if last is not None else -1,)).fetchall()
    found = {int(r[0]): str(r[1]) for r in rows}
    if last is not None and found.get(last.seq) != last.hash:
        log.warning("the audit trail no longer holds row %s as this workstation saw it: anchor kept; run "
                    "`trail verify`", last.seq)
        return last
    if not found or (last is not None and max(found) <= last.seq):
        return last
    top = max(found)
    note(store, top, found[top])
    return Anchor(top, found[top], "")


def check(conn: Any, anchor: Anchor) -> tuple[int, str] | None:
    """(first row that is not as this workstation saw it, the sentence) when the trail does not reach `anchor` or
    its row `anchor.seq` is another row; None when it holds."""
    row = conn.execute("SELECT hash FROM audit_trail WHERE id = ?", (anchor.seq,)).fetchone()
    if row is not None and str(row[0]) == anchor.hash:
        return None
    last = head(conn)
    ends = f"the trail ends at row {last[0]}" if last else "the trail is empty"
    when = f" on {anchor.at}" if anchor.at else ""
    if row is None:
        first = (last[0] + 1) if last else 1
        return first, (f"{ends} but this workstation saw row {anchor.seq} (hash {anchor.hash[:16]}…){when}: the "
                       f"newest rows were removed from the trail's end, with the triggers off (the chain of what is "
                       f"left still verifies)")
    return anchor.seq, (f"row {anchor.seq} is not the row this workstation saw there (hash {anchor.hash[:16]}…){when}: "
                        "the trail's end was removed and written again")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("trail anchors file %s unreadable (%s); starting afresh", path, exc)
        return {}
    return data if isinstance(data, dict) else {}
