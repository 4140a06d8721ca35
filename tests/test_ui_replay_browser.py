"""Replay as a data browser (a 2-minute recording with info events every second and two alarms): a click on the
timeline jumps exactly there; every seek, paused, fills the plots from the file for the whole window up to the new
position; next/previous alarm skip the info events and show the lead-up; high ticks are painted above info ticks;
the event list is rebuilt for the position; the controls do not move as the position label changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt6.QtCore import QPoint, Qt

from tests.helpers_recording import write_session
from workstation.bus import Event
from workstation.ui.alarms import COLORS
from workstation.ui.main_window import MainWindow

TIMEOUT_MS = 15_000
T0 = 1000.0


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    events = [Event(T0 + k, "note", "info", "operator", f"note {k}", {}) for k in range(1, 120)]
    events += [Event(T0 + 50.2, "alarm", "medium", "light", "light lamp ageing", {}),
               Event(T0 + 90.5, "interlock", "high", "safety", "INTERLOCK contact_lost on light: lost",
                     {"interlock": "contact_lost", "device": "light"})]
    events.sort(key=lambda e: e.t_host_s)
    return write_session(tmp_path_factory.mktemp("rec"), 120.0, events=events, t0_host_s=T0)


def opened(qtbot, win: MainWindow, path: Path):
    win.start_page.replay_path.setText(str(path))
    win.start_page.choose_replay()
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.replay, timeout=TIMEOUT_MS)
    return win.replay


def wait_fill(qtbot, view, fills: int) -> None:
    qtbot.waitUntil(lambda: view.fills > fills, timeout=TIMEOUT_MS)


def test_a_click_jumps_exactly_and_fills_the_window_while_paused(qtbot, window: MainWindow, recording: Path) -> None:
    view = opened(qtbot, window, recording)
    duration = view.source.duration_s
    tl = view.timeline
    fills = view.fills
    qtbot.mouseClick(tl, Qt.MouseButton.LeftButton, pos=QPoint(6 + int(0.75 * (tl.width() - 12)), tl.height() // 2))
    assert view.source.position_s == pytest.approx(0.75 * duration, rel=0.01)
    assert not view.source.playing
    wait_fill(qtbot, view, fills)
    stats = view.buffers.stats("light")
    pos = view.source.position_s
    assert stats.t_first_s == pytest.approx(pos - view.plots.window_s, abs=0.1)  # the whole window, from the file
    assert stats.t_last_s == pytest.approx(pos, abs=0.05)
    qtbot.waitUntil(lambda: view.events.count() == int((view._event_t <= pos + 1e-9).sum()), timeout=TIMEOUT_MS)
    fills = view.fills
    view.plots.set_window("1 min")  # a longer window is filled again at once, still paused
    wait_fill(qtbot, view, fills)
    assert view.buffers.stats("pen").t_first_s == pytest.approx(pos - 60.0, abs=0.1)


def test_next_and_previous_alarm_show_the_lead_up(qtbot, window: MainWindow, recording: Path) -> None:
    view = opened(qtbot, window, recording)
    fills = view.fills
    alarm = view.step(+1, alarms_only=True)
    assert alarm is not None and alarm.severity == "medium"  # 50 info events skipped
    wait_fill(qtbot, view, fills)
    stats = view.buffers.stats("light")
    assert stats.t_first_s < 50.2 - 5.0 and stats.t_last_s > 50.2  # the event with its lead-up in the window
    assert "lamp ageing" in view.events.currentItem().text()
    high = view.step(+1, alarms_only=True)
    assert high is not None and high.severity == "high"
    qtbot.waitUntil(lambda: "Skin contact" in view.events.currentItem().text(), timeout=TIMEOUT_MS)
    assert view.step(+1, alarms_only=True) is None and "no later alarm" in window.messages[-1][1]
    back = view.step(-1, alarms_only=True)
    assert back is not None and back.severity == "medium"
    qtbot.waitUntil(lambda: view.events.count() == int((view._event_t <= view.source.position_s + 1e-9).sum()),
                    timeout=TIMEOUT_MS)  # rebuilt for the earlier position
    ev = view.step(+1)
    assert ev is not None and ev.message == "note 51"  # the next event of any kind after the alarm
    ev = view.step(-1)
    assert ev is not None and ev.severity == "medium"


def test_high_ticks_are_painted_last_and_controls_do_not_move(qtbot, window: MainWindow, recording: Path) -> None:
    view = opened(qtbot, window, recording)
    colors = [c for _, c in view.timeline.markers]
    assert colors[-1] == COLORS["high"][0] and colors.index(COLORS["high"][0]) > colors.index(COLORS["medium"][0])
    qtbot.waitUntil(lambda: view.checksum is not None, timeout=TIMEOUT_MS)
    places = {w: w.geometry() for w in (view.play_button, view.next_alarm_button, view.position, view.timeline)}
    for t in (0.0, 9.5, 119.0):
        view.seek(t)
        qtbot.wait(150)
        assert {w: w.geometry() for w in places} == places


def test_previous_alarm_after_playing_to_the_end(qtbot, window: MainWindow, recording: Path) -> None:
    view = opened(qtbot, window, recording)
    view.seek(view.source.duration_s)
    qtbot.waitUntil(lambda: view.source.position_s == view.source.duration_s, timeout=TIMEOUT_MS)
    back = view.step(-1, alarms_only=True)
    assert back is not None and back.severity == "high"  # the last alarm before the end, not "none earlier"


def test_the_report_is_written_from_the_replayed_recording(qtbot, window: MainWindow, recording: Path,
                                                           tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / recording.name
    shutil.copyfile(recording, copy)
    view = opened(qtbot, window, copy)
    qtbot.mouseClick(view.report_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.report_path is not None, timeout=TIMEOUT_MS)
    assert view.report_path.parent == tmp_path and view.report_path.read_bytes()[:4] == b"%PDF"
