"""A crashed session's recording that crash recovery (workstation.session.journal.recover_file) cannot seal yet,
and the words for it. Recovery takes the recording's SHA-256, writes its .sha256 and .sig and indexes it in the
store; it never does so while

- another program has the file open for writing: its bytes may still change (an engineer's h5py in append mode, a
  tool repairing it), so a checksum taken now could turn into a false tamper alarm;
- the killed recorder's "open for writing" mark is still in it: its clearing (workstation.recording.mark) is refused
  while any program holds the file, and clearing it after a checksum was taken would change the checksummed bytes
  (and h5dump, HDFView and MATLAB do not open a marked file).

Such a file is left as it is, unsealed and unindexed; the session is closed with what could be read, and
journal.recover_recordings_here seals it at the next start or share pass (`recording sync`, the window's copier)
once the file is free. A crashed session that ran in this room but whose recording is not on this disk any more
(moved, renamed, deleted) waits too: it is not "on another workstation's disk". Each waiting recording is said,
with what to do, by the closing note, by `recording sync` (which counts it as still to copy) and by the window's
share line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

JOURNAL_ONLY = ("only the doses journalled while it ran are kept, and light it planned waits for the light interval "
                "(the dose it gave is unknown{where})")
"""What a crashed session keeps while its recording cannot be read: `where` is "" or " here"."""


def not_sealable(path: Path | None) -> bool:
    """Whether no checksum, signature or index entry may be taken of the recording at `path` now: it still carries
    HDF5's "open for writing" mark (mark.still_marked), or a program has it open for writing (its bytes may still
    change). False when there is no file."""
    from workstation.recording.mark import held_by_a_process, still_marked

    if path is None or not path.is_file():
        return False
    try:
        return still_marked(path) or held_by_a_process(path, for_writing=True)
    except OSError:
        return False


def held_words(path: Path) -> str:
    """Why crash recovery leaves the recording at `path` unsealed because another program holds it, as the end of
    "its recording is …": "open in another program, so it is not yet checksummed, signed or indexed (…): close that
    program, and the next start or `… recording sync` does it"; "" when no program holds it so (not_sealable)."""
    from workstation.recording.mark import held_by_a_process, still_marked
    from workstation.recording.share import sync_command

    try:
        if not path.is_file():
            return ""
        if held_by_a_process(path, for_writing=True):
            why = "that program has it open for writing, so its bytes may still change"
        elif still_marked(path) and held_by_a_process(path):
            why = "the \"open for writing\" mark the crash left in it cannot be cleared while that program has it"
        else:
            return ""
    except OSError:
        return ""
    return (f"open in another program, so it is not yet checksummed, signed or indexed ({why}): close that program, "
            f"and the next start or `{sync_command()}` does it")


def rooms_here(store: Any) -> set[str]:
    """The names a session that ran on this workstation carries as its room (sessions.room): this workstation's room
    (course_lease.room_name: the setting clinic.room, by default the computer's name) and its name in the store
    (ClinicStore.workstation, the computer's name: a session recorded before clinic.room was set)."""
    from workstation.errors import UserError
    from workstation.session.course_lease import room_name

    try:
        return {store.workstation, room_name()}
    except UserError:  # an invalid settings file (said where the settings are loaded): the computer's name counts
        return {store.workstation}


def missing_words(path: Path) -> str:
    """For a crashed session that ran in this room whose recording is not on this disk: the end of "its recording
    …"."""
    from workstation.recording.share import sync_command

    return (f"{path} is not on this workstation's disk, where it was recorded (moved, renamed or deleted?): put it "
            f"back there, and the next start or `{sync_command()}` recovers it (checksum, signature, index) and counts "
            "the doses it shows")


def waiting_sentences(store: Any) -> list[str]:
    """A sentence for each crashed session's recording that recovery could not seal on this workstation yet: held by
    another program (held_words), or recorded here and missing (missing_here). For `recording sync` and the window's
    share line, which count each as still to copy."""
    held = []
    for row in store.crashed_unindexed():
        path = Path(row["recording_path"])
        if path.is_file() and (words := held_words(path)):
            held.append(f"{store.session_label(row['id'])}'s recording {path} is {words}")
    return held + missing_here(store)


def missing_here(store: Any) -> list[str]:
    """A sentence for each crashed session that ran in this room whose recording is not on this disk (missing_words)."""
    here = rooms_here(store)
    return [f"{store.session_label(row['id'])}'s recording {missing_words(path)}" for row in store.crashed_unindexed()
            if not (path := Path(row["recording_path"])).is_file() and row["room"] in here]
