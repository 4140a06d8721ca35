"""Events at no time (a host time that is NaN or ±inf) in the replay window and in `Recording.events` (tenth
session's fresh tester: "-inf s  INFO  Light: Armed." first in the event list, and a tick at the timeline's left
edge). Such an event is listed last, at the end of the recording, as "no time"; it is never ticked or jumped to."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers_load import scenario_run
from PyQt6.QtCore import Qt

from workstation.recording import Recording
from workstation.ui.main_window import MainWindow

TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def no_time_recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A real recording with its first event at -inf and its third at NaN; returns the path and those messages."""
    result = scenario_run("contact-lost-mid-exposure", tmp_path_factory.mktemp("recordings"))
    path = tmp_path_factory.mktemp("edited") / result.recording.name
    shutil.copy(result.recording, path)
    with h5py.File(path, "r+") as f:
        rows = f["events"][:]
        rows["t_host_s"][0], rows["t_host_s"][2] = -np.inf, np.nan
        f["events"][...] = rows
        messages = [rows["message"][0].decode(), rows["message"][2].decode()]
    return path, messages


def test_events_at_no_time_come_last_in_the_files_order(no_time_recording) -> None:
    path, messages = no_time_recording
    with Recording.open(path) as rec:
        times = [e.t_host_s for e in rec.events]
        assert [e.message for e in rec.events[-2:]] == messages
        assert all(np.isfinite(times[:-2])) and times[:-2] == sorted(times[:-2])


def test_the_replay_lists_them_at_the_end_as_no_time_never_as_a_number(qtbot, window: MainWindow,
                                                                     no_time_recording) -> None:
    path, _messages = no_time_recording
    win = window
    win.start_page.replay_path.setText(str(path))
    qtbot.mouseClick(win.start_page.replay_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.replay and win.replay.source is not None,
                    timeout=TIMEOUT_MS)
    view = win.replay
    n = len(view.recording.events)
    ticked = [e for e, r in zip(view.recording.events, view._roles, strict=True)
              if r not in ("related", "action-related") and np.isfinite(e.t_host_s)]
    assert len(view.timeline.markers) == len(ticked) and len(ticked) >= 1
    assert not [x for x, _c in view.timeline.markers if x == 0.0]  # no tick pinned at the left edge
    # the first jump goes to the first event with a time, and the last jump back from the end too
    qtbot.mouseClick(view.next_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.events.currentItem() is not None, timeout=TIMEOUT_MS)
    assert "no time" not in view.events.currentItem().text()
    view.speed.setCurrentText("10x")
    qtbot.mouseClick(view.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.source.playing, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: view.events.count() == n, timeout=TIMEOUT_MS)
    shown = [view.events.item(i).text() for i in range(n)]
    assert [t.strip().startswith("no time ") for t in shown[-2:]] == [True, True], shown[-3:]
    assert not [t for t in shown if re.search(r"\b(nan|inf)\b", t, re.IGNORECASE)], shown
    view.prev_button.click()
    qtbot.waitUntil(lambda: view.events.currentItem() is not None, timeout=TIMEOUT_MS)
    assert "no time" not in view.events.currentItem().text()
