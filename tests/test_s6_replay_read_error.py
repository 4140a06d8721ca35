"""A part of a recording that cannot be read while it is replayed (a damaged read, the file gone from under it) pauses
the replay with the reader's sentence, and the replay's thread lives on to seek elsewhere or close: it ended silently
with a log entry only (sixth session, from the damaged-file work of issue 12). A real recording, played headless."""

from __future__ import annotations

import time
from pathlib import Path

from helpers_recording import write_session

from workstation.bus import SessionBus
from workstation.recording import Recording, RecordingError, ReplaySource


def _wait(cond, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)
    return cond()


def test_a_read_that_fails_while_playing_pauses_the_replay_in_words(tmp_path: Path) -> None:
    path = write_session(tmp_path, 60.0)
    rec = Recording.open(path)
    told: list[RecordingError] = []
    source = ReplaySource(rec, SessionBus(), speed=100.0, on_error=told.append)
    try:
        rec._h5.close()  # every later read of the file fails, as a damaged part does
        source.play()
        assert _wait(lambda: bool(told)), "the failed read was not told"
        assert "is a damaged HDF5 file: the telemetry of" in str(told[0]) and path.name in str(told[0])
        assert source.error is told[0] and not source.playing and not source.finished.is_set()
        assert source._thread.is_alive()
        # Still answers: step_event raises TimeoutError when the thread does not answer, whatever the wait; a long wait
        # keeps a loaded machine from looking like a hung thread.
        assert source.step_event(+1, timeout_s=60.0) is None
    finally:
        source.close()
    assert not source._thread.is_alive()
