"""Fresh tester's findings on issue 15 in a simulated session through the window (pytest-qt, offscreen)."""

from __future__ import annotations

import re

from PyQt6.QtCore import Qt
from test_ui_session import TIMEOUT_MS, arm, start_training

from workstation.recording import Recording
from workstation.ui.main_window import MainWindow


def test_one_session_clock_for_plots_trainer_log_and_recording(qtbot, window: MainWindow) -> None:
    """Finding 4: the live plots, the trainer's log and the recording count from the recording's time 0."""
    win = window
    start_training(qtbot, win, "combined-uneventful.toml")
    qtbot.wait(600)  # samples arrive before the session starts: they must not set the plots' time 0
    arm(qtbot, win)
    rec_t0 = win.controller.rig.recorder.t0_host_s
    assert win.controller.buffers._session_t0_host_s == rec_t0
    assert win.trainer.t0_s == rec_t0
    emulator = win.controller.rig.emulators["light"]
    qtbot.mouseClick(win.treatment.start_step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: emulator.state().active, timeout=TIMEOUT_MS)
    win.trainer.inject("light", "contact_lost")
    qtbot.waitUntil(lambda: not win.treatment.step_running, timeout=TIMEOUT_MS)
    qtbot.mouseClick(win.treatment.end_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.controller.saved is not None, timeout=TIMEOUT_MS)
    logged = [float(m[1]) for m in re.finditer(r"^\s*(-?[\d.]+) s .*inject", win.trainer.log.toPlainText(), re.M)]
    with Recording.open(win.controller.saved.recording) as rec:
        assert rec.meta.t0_host_s == rec_t0
        trip = next(e for e in rec.events if e.kind == "interlock" and "contact" in e.message.lower())
        at_s = trip.t_host_s - rec.meta.t0_host_s
    assert logged, win.trainer.log.toPlainText()
    assert abs(logged[0] - at_s) < 1.0, (logged, at_s)  # the same clock (the trip follows the injection)
