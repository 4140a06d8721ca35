"""The checks a folder typed for the clinic's recordings (`store set-recordings-root DIR`, with or without
`--clinic-share`) passes before the store records it: one check, one place (issue 17's fresh tester, items 1 and 3).

`given_folder` refuses what a clinic would not mean: nothing typed (argparse turns "" into the current folder), a
path with spaces around it (a quoting slip), a relative path (it would depend on the folder the command was run
from), a path that does not exist or is a file. `probe_share` writes a small file on a share, fsyncs it, reads it
back and removes it: the share is only recorded as the clinic's once a write there was read back the same.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from workstation.errors import UserError
from workstation.terminal import quoted

PROBE_BYTES = 4096  # enough to cross a small network file system's first block; the probe file is removed after

__all__ = ["given_folder", "probe_share", "share_option"]


def folder_text(text: str, what: str) -> Path:
    """The absolute path `text` names (`~` expanded), whether or not it exists yet (a share not mounted now is
    retried, not refused). Raises UserError, in words, for an empty or blank text, spaces around it, a relative
    path."""
    if not text.strip():
        raise UserError(f"No folder was given for {what}: the text is empty. Give its full path, e.g. "
                        "/mnt/clinic/recordings.")
    if text != text.strip():
        raise UserError(f"The folder given for {what}, {quoted(text)}, begins or ends with a space (a quoting slip?); "
                        "give the path without spaces around it.")
    folder = Path(text).expanduser()
    if not folder.is_absolute():
        raise UserError(f"{text} is a relative path: give the full path of {what}, starting with / (a relative "
                        "path would depend on the folder this command is run from).")
    return folder.absolute()


def share_option(text: str) -> Path:
    """argparse `type` of the options naming the clinic's recordings share (`--clinic-recordings`, `session
    --share`): folder_text's checks, refused by argparse (exit 2) in the same words."""
    import argparse

    try:
        return folder_text(text, "the clinic's recordings share")
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def given_folder(text: str, what: str) -> Path:
    """The absolute folder `text` names (`~` expanded), for `what` ("this workstation's recordings folder", "the
    clinic's recordings share"). Raises UserError, in words, for what folder_text refuses, a path that does not
    exist or is not a folder."""
    folder = folder_text(text, what)
    if folder.is_file():
        raise UserError(f"{folder} is a file, not a folder; give the folder of {what}.")
    if not folder.is_dir():
        raise UserError(f"{folder} does not exist (or is not reachable: is the share mounted?); give the folder of "
                        f"{what}.")
    return folder


def probe_share(share: Path) -> None:
    """Write a probe file on `share`, fsync it, read it back, compare and remove it. Raises ShareProblem (the
    share's own words: not reachable, permission denied, read-only, full, or the bytes read back differ)."""
    from workstation.keys import workstation_name
    from workstation.recording.share import ShareProblem, os_words

    data = secrets.token_bytes(PROBE_BYTES)
    probe = share / f".cicatrix-probe.{workstation_name()}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        try:
            with open(probe, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            back = probe.read_bytes()
        finally:
            probe.unlink(missing_ok=True)
    except OSError as exc:
        raise ShareProblem(os_words(exc, share), share_down=True) from exc
    if back != data:
        raise ShareProblem(f"a file written on the share {share} did not read back the same: the share does not "
                           "keep what is written there", share_down=True)
