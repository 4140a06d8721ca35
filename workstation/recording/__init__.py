"""Session recording to HDF5 (writer), reading and validation (reader), replay as a device source, CSV export.

The layout lives in `format.py` and is described in `docs/recording-format.md`.
"""

from workstation.recording.errors import RecordingError
from workstation.recording.format import FORMAT_VERSION
from workstation.recording.reader import Recording
from workstation.recording.replay import ReplaySource
from workstation.recording.writer import SessionMeta, SessionRecorder

__all__ = ["FORMAT_VERSION", "Recording", "RecordingError", "ReplaySource", "SessionMeta", "SessionRecorder"]
