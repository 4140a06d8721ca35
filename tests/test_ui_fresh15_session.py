"""Fresh tester's findings on issue 15 in a simulated session through the window (pytest-qt, offscreen)."""

from __future__ import annotations

import re

import numpy as np
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


def test_a_resumed_exposure_continues_its_steps_dose_curve_live_and_in_the_report(qtbot, window: MainWindow) -> None:
    """Finding 5: after a STOP and resume, delivered-so-far in the step against the step's planned total."""
    from test_ui_recovery import click

    from workstation.ui.report_data import read_report

    win, tv = window, window.treatment
    start_training(qtbot, win, "combined-uneventful.toml")
    arm(qtbot, win)
    light = win.controller.rig.emulators["light"]
    click(qtbot, tv.start_step_button)
    qtbot.waitUntil(lambda: light.state().active, timeout=TIMEOUT_MS)
    qtbot.wait(300)
    qtbot.keyClick(win, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not tv.step_running, timeout=TIMEOUT_MS)
    click(qtbot, tv.reset_button)
    qtbot.waitUntil(lambda: not tv.interlocks.tripped(), timeout=TIMEOUT_MS)
    click(qtbot, tv.resume_button)
    click(qtbot, tv.start_step_button)
    qtbot.waitUntil(lambda: not tv.step_running, timeout=TIMEOUT_MS)
    panel = tv.plots.panels["light"]
    assert len(panel.step_doses) == 1 + 1 and panel.step_doses[-1][1] > 0 and panel.step_doses[-1][2] == 260
    tv.plots._force_refresh()
    _t, dose = panel.curves["dose_mj_cm2"].getData()
    _t, target = panel.curves["target_dose_mj_cm2"].getData()
    assert abs(np.nanmax(dose) - 260) < 1.5  # the step's total, not the resumed exposure's own
    assert abs(target[np.isfinite(target)][-1] - 260) < 1e-9  # the plan, not the remainder
    qtbot.mouseClick(tv.end_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.controller.saved is not None, timeout=TIMEOUT_MS)
    data = read_report(win.controller.saved.recording)
    first, second = [s for s in data.steps if s.modality == "light"]
    assert first.index == second.index and second.before_mj_cm2 == first.delivered_dose_mj_cm2 > 0
    within = second.t_s >= second.t_start_s
    assert abs(second.series["dose_mj_cm2"][within].max() - 260) < 1.5
    assert np.all(second.series["target_dose_mj_cm2"][within] == 260)
    assert "of 260 mJ/cm² planned (this exposure" in second.describe()


def test_operator_stop_is_one_action_in_the_messages_the_summary_and_the_report(qtbot, window: MainWindow) -> None:
    """Finding 7: the operator's STOP is one operator-action line everywhere, never red errors per device."""
    from workstation.ui.report_data import read_report

    win, tv = window, window.treatment
    start_training(qtbot, win, "combined-uneventful.toml")
    arm(qtbot, win)
    light = win.controller.rig.emulators["light"]
    qtbot.mouseClick(tv.start_step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: light.state().active, timeout=TIMEOUT_MS)
    before = len(win.messages)
    qtbot.mouseClick(tv.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tv.step_running, timeout=TIMEOUT_MS)
    qtbot.wait(300)
    after = win.messages[before:]
    assert not [m for m in after if m[0] == "error"], after
    assert sum("STOP" in m[1] for m in after) == 1
    assert not tv.alarms.alarms and len(tv.alarms.actions) == 1
    qtbot.mouseClick(tv.end_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.controller.saved is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.after, timeout=TIMEOUT_MS)
    summary = win.after.summary.toPlainText()
    assert summary.count("Operator STOP") == 1 and "E-stop interlock" not in summary
    trips = read_report(win.controller.saved.recording).trips
    assert len(trips) == 1 and "Operator STOP" in trips[0]


def test_plan_page_names_a_latched_trip_and_resets_it(qtbot, window: MainWindow) -> None:
    """Finding 10: a trip latched on the plan page is shown there with Reset interlocks (no need for Start page)."""
    win = window
    start_training(qtbot, win, "combined-uneventful.toml")
    pv = win.plan_view
    assert not pv.reset_button.isVisible()
    win.trainer.inject("light", "stall")
    qtbot.waitUntil(lambda: pv.reset_button.isVisible(), timeout=TIMEOUT_MS)
    assert "Telemetry" in pv.tripped_label.text() and "_" not in pv.tripped_label.text()
    win.trainer.inject("light", "unstall")
    qtbot.wait(300)
    qtbot.waitUntil(pv.reset_button.isEnabled, timeout=TIMEOUT_MS)
    qtbot.mouseClick(pv.reset_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not pv.reset_button.isVisible(), timeout=TIMEOUT_MS)
    assert win.pages.currentWidget() is pv and win.controller.rig is not None  # still connected, same patient
    arm(qtbot, win)  # and the treatment can start
