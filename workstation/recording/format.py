"""The HDF5 layout of a session recording, in one place. `docs/recording-format.md` describes it for people.

Every dataset exists before the file switches to single-writer/multiple-reader (SWMR) mode, because SWMR forbids
creating objects or attributes afterwards; closing attributes are added once the writer has closed the file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import h5py
import numpy as np

# The oldest HDF5 file-format bounds that keep SWMR (superblock 3): HDF5 1.10 and later read every object, so
# Debian's h5dump/h5ls 1.10, HDFView and MATLAB open the files ("latest" under HDF5 2.0 wrote messages 1.10 cannot read).
LIBVER = ("v110", "v110")

FORMAT_NAME = "cicatrix-session"
FORMAT_VERSION = 2  # 2: the notes of the cleaner name what they are about by JSON Pointer (1: dotted paths)

MODES = ("clinical", "simulation")

# Root attributes written at creation, and at close.
ROOT_ATTRS = (
    "format", "format_version", "session_uuid", "start_time_utc", "t0_host_s", "software_version", "mode",
    "patient_pseudonym", "operator_id", "protocol_id", "protocol_version",
)
CLOSING_ATTRS = ("end_time_utc", "closed_cleanly", "close_note", "closed_on_full_disk")
# Root attribute written at creation by every version that signs its recordings (True): such a file without a valid
# .sig beside it is "SIGNATURE MISSING", not "recorded before signatures" (workstation.recording.signature).
SIGNATURE_EXPECTED = "signature_expected"

DEVICES_GROUP = "devices"
TELEMETRY = "telemetry"  # per device: compound dtype, one field per channel
INDEX = "index"  # per device: one row per append, so a time window is found without reading the whole telemetry
LOSSES = "losses"  # per device: samples the recorder could not keep (queue ceiling exceeded), never silent
EVENTS = "events"
COMMANDS = "commands"
PLAN = "plan"

_STR = h5py.string_dtype("utf-8")
EVENT_DTYPE = np.dtype(
    [("t_host_s", "<f8"), ("kind", _STR), ("severity", _STR), ("source", _STR), ("message", _STR),
     ("details_json", _STR)]
)
COMMAND_DTYPE = np.dtype(
    [("t_host_s", "<f8"), ("device", _STR), ("command", _STR), ("args_json", _STR), ("result", _STR),
     ("t_reply_s", "<f8")]
)
PLAN_DTYPE = np.dtype([("t_host_s", "<f8"), ("plan_json", _STR)])
INDEX_DTYPE = np.dtype([("row", "<u8"), ("t_host_s", "<f8")])
LOSS_DTYPE = np.dtype([("t_first_host_s", "<f8"), ("t_last_host_s", "<f8"), ("samples_lost", "<u8")])

TELEMETRY_CHUNK_ROWS = 4096  # ~160 kB: a 10-s window at 2 kHz touches about five chunks
SMALL_CHUNK_ROWS = 256
UNIT_SUFFIX = ".unit"  # telemetry attribute "<field>.unit", e.g. "irradiance_mw_cm2.unit" = "mW/cm²"
DESCRIPTION_SUFFIX = ".description"


def recording_path(directory: Path, session_uuid: str, day: dt.date) -> Path:
    """`recordings/YYYY-MM-DD/<session-uuid>.h5` under `directory`."""
    return Path(directory) / day.isoformat() / f"{session_uuid}.h5"


def checksum_path(h5_path: Path) -> Path:
    return h5_path.with_name(h5_path.name + ".sha256")


def signature_path(h5_path: Path) -> Path:
    """The workstation's signature of the recording's SHA-256: `<session-uuid>.h5.sig`."""
    return h5_path.with_name(h5_path.name + ".sig")


def sidecar_paths(h5_path: Path) -> tuple[Path, Path]:
    """The files that travel with a recording wherever it is copied: its .sha256 and its .sig."""
    return checksum_path(h5_path), signature_path(h5_path)


def report_path(h5_path: Path) -> Path:
    """The session's PDF report, beside its recording: `<session-uuid>-report.pdf`."""
    return h5_path.with_name(h5_path.stem + "-report.pdf")


BALLAST_GLOB = ".*.h5.ballast"


def ballast_path(h5_path: Path) -> Path:
    """A hidden file of spare bytes beside a recording being written (removed when it closes)."""
    return h5_path.with_name(f".{h5_path.name}.ballast")


def recording_of_ballast(ballast: Path) -> Path:
    """The recording a reserve file (`ballast_path`, or its `freed_ballast_path`) belongs to."""
    return ballast.with_name(ballast.name.removeprefix(".").removesuffix(".ballast").removesuffix(".ballast-freed"))


FREED_BALLAST_GLOB = ".*.h5.ballast-freed"


def freed_ballast_path(h5_path: Path) -> Path:
    """What a killed recorder's ballast becomes when another command gives its room back (`inspect`, the next recorder
    in the folder): renamed to this name and emptied, so crash recovery still reads the kill (a recorder gives its
    ballast back itself only on a write failure or at its close), then removes it."""
    return h5_path.with_name(f".{h5_path.name}.ballast-freed")


def utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
