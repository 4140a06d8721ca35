"""The treatment screen: the step list, the current area, one large STOP, the interlock lights, the alarms and the live
plots. Steps run on the controller's worker thread; this view only reacts to bus events and to their results."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workstation.bus import Event
from workstation.session.roles import kind_of, used_by_steps
from workstation.session.session import NOTE_MAX_CHARS, SessionError, State, Step
from workstation.ui.alarms import AlarmList, InterlockLights
from workstation.ui.messages import user_text
from workstation.ui.plots import LivePlots
from workstation.ui.session_controller import SessionController
from workstation.ui.wording import event_sentence, interlock_name, scrub, state_words

STOP_STYLE = ("QPushButton{background:#c62828;color:white;font-size:28px;font-weight:bold;border-radius:10px;}"
              "QPushButton:pressed{background:#8e0000;}")


class TreatmentView(QWidget):
    def __init__(self, controller: SessionController, notify: Callable[[str, str], None],
                 on_ended: Callable[[object], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller, self.notify, self.on_ended = controller, notify, on_ended
        self.step_running = False
        self.resetting = False
        self.ending = False
        self.failure_message: str | None = None  # what failed (the recording, the store), as the window said it
        self.button_timer = QTimer(self)  # telemetry (a device's fault bits) changes without an event: re-check
        self.button_timer.setInterval(200)
        self.button_timer.timeout.connect(self.update_buttons)
        self.stop_callbacks: list[Callable[[], None]] = []

        self.current_area = QLabel("No step running")
        self.current_area.setObjectName("current_area")
        font = QFont()
        font.setPointSize(16)
        font.setBold(True)
        self.current_area.setFont(font)
        self.state_label = QLabel("session: idle")
        self.step_list = QListWidget()
        self.step_list.setObjectName("step_list")
        self.step_list.setMaximumHeight(130)

        self.stop_button = QPushButton("STOP")
        self.stop_button.setObjectName("stop_button")
        self.stop_button.setToolTip("Stops both devices now (also Esc or Space)")
        self.stop_button.setMinimumSize(180, 110)
        self.stop_button.setStyleSheet(STOP_STYLE)
        self.stop_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.stop_button.clicked.connect(self.press_stop)

        self.start_step_button = QPushButton("Start next step")
        self.start_step_button.setObjectName("start_step_button")
        self.start_step_button.clicked.connect(self.start_next_step)
        self.reset_button = QPushButton("Reset interlocks")
        self.reset_button.setObjectName("reset_button")
        self.reset_button.clicked.connect(self.reset_interlocks)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setObjectName("pause_button")
        self.pause_button.setToolTip("Stop both devices and pause the session; the step can be run again after Resume")
        self.pause_button.clicked.connect(self.pause)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setObjectName("resume_button")
        self.resume_button.clicked.connect(self.resume)
        self.end_button = QPushButton("End session")
        self.end_button.setObjectName("end_button")
        self.end_button.clicked.connect(self.end_session)
        for b in (self.start_step_button, self.pause_button, self.reset_button, self.resume_button, self.end_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space is STOP, never "click the focused button"
        # Notes go into the recording. They can be typed only while no step runs: a text field holding the focus
        # would take Space as a character, and during a step Space must always be STOP.
        self.note_edit = QLineEdit()
        self.note_edit.setObjectName("note_edit")
        self.note_edit.setPlaceholderText("a note for the recording (no names), between steps")
        self.note_edit.setMaxLength(NOTE_MAX_CHARS)
        self.note_edit.returnPressed.connect(self.add_note)
        self.note_button = QPushButton("Add note")
        self.note_button.setObjectName("note_button")
        self.note_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.note_button.clicked.connect(self.add_note)

        self.interlocks = InterlockLights()
        self.alarms = AlarmList()
        self.alarms.bus = controller.bus
        self.plots = LivePlots(controller.buffers)

        buttons = QVBoxLayout()
        for b in (self.start_step_button, self.pause_button, self.reset_button, self.resume_button, self.end_button):
            buttons.addWidget(b)
        top = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self.current_area)
        left.addWidget(self.state_label)
        left.addWidget(self.step_list)
        notes = QHBoxLayout()
        notes.addWidget(self.note_edit, 1)
        notes.addWidget(self.note_button)
        left.addLayout(notes)
        top.addLayout(left, 3)
        top.addLayout(buttons, 1)
        top.addWidget(self.stop_button)
        self.side = QVBoxLayout()  # alarms, interlocks, and the trainer panel in simulation
        self.side.addWidget(QLabel("<b>Interlocks</b>"))
        self.side.addWidget(self.interlocks)
        self.side.addWidget(self.alarms, 1)
        side_widget = QWidget()
        side_widget.setLayout(self.side)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.plots)
        split.addWidget(side_widget)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)

    # --- set-up ---------------------------------------------------------------------------------------------------
    def show_steps(self, steps: list[Step]) -> None:
        self.step_list.clear()
        for i, s in enumerate(steps):
            self.step_list.addItem(f"{i + 1}. {s.describe()}")
        self._mark_current()
        self.update_buttons()
        self.button_timer.start()
        for panel in self.plots.panels.values():
            panel.step_doses.clear()  # a new session: its own steps
        rig = self.controller.rig
        if rig is not None:  # the devices the steps use (a light-only course draws no depth)
            self.plots.show_devices(used_by_steps({n: kind_of(d) for n, d in rig.devices.items()},
                                                  [s.modality for s in steps]))
        self.plots.start()

    def _mark_current(self) -> None:
        session = self.controller.session
        if session is None:
            return
        for i in range(self.step_list.count()):
            item = self.step_list.item(i)
            text = item.text().split("  —", 1)[0]
            done = [r for r in session.results if r.step is session.steps[i]]
            if i < session.current:
                text += "  — done"
            elif done:
                text += f"  — {done[-1].outcome}"
            item.setText(text)
        if session.current < self.step_list.count():
            self.step_list.setCurrentRow(session.current)

    def update_buttons(self) -> None:
        """Each button is enabled only when its action can succeed now (Reset: when something is latched; it still
        says which cause remains if one does)."""
        c = self.controller
        session = c.session
        state = session.state if session is not None else None
        latched = c.needs_reset()
        live = session is not None and c.saved is None and c.held() is None  # held: only End session can act
        self.start_step_button.setEnabled(live and not self.step_running and state == State.ARMED and not latched
                                          and session.next_step is not None)
        self.pause_button.setEnabled(live and state in (State.TREATING, State.ARMED))
        self.reset_button.setEnabled(c.rig is not None and latched and not self.resetting and c.held() is None)
        self.resume_button.setEnabled(live and state == State.PAUSED and not latched and not self.step_running)
        self.end_button.setEnabled(session is not None and c.saved is None and not self.step_running
                                   and state != State.TREATING and not self.ending)
        # a note only between steps (disabled, the field drops the focus: Space reaches STOP) and while the recording
        # can take it: after the recording failed, or once ended, a note would be in the log only
        refused = c.note_refused()
        for w in (self.note_edit, self.note_button):
            w.setEnabled(not self.step_running and refused is None)
        self.note_button.setToolTip(refused or "")

    def reset_view(self) -> None:
        self.button_timer.stop()
        self.plots.stop()
        self.alarms.clear()
        self.interlocks.clear()
        self.step_list.clear()
        self.current_area.setText("No step running")
        self.state_label.setText("session: idle")
        self.ending = False
        self.failure_message = None
        self._set_step_running(False)

    def _set_step_running(self, on: bool) -> None:
        self.step_running = on
        self.update_buttons()  # the note field and button too: disabled during a step

    # --- actions --------------------------------------------------------------------------------------------------
    def add_note(self) -> None:
        """The note into the recording. Once the recording cannot take it (it failed, or the session ended) it is
        refused in words; held, the failure stays said: never an info that would hide it."""
        refused = self.controller.note_refused()  # the button is off then, but Return or a race can still get here
        if refused is not None:
            self._say_not_recorded(refused)
            return
        try:
            self.controller.add_note(self.note_edit.text())
        except SessionError as exc:
            self.notify(str(exc).capitalize(), "error")
            return
        if self.controller.note_refused() is not None:  # the writer failed meanwhile: the note may not be in the file
            self._say_not_recorded("The note may not be in the recording.")
            return
        self.note_edit.clear()
        self.note_edit.clearFocus()  # Space is STOP again
        if self.controller.held() is not None:  # only the store failed: the note is in the recording, the failure stays
            self._say_not_recorded("Note added to the recording.")
            return
        self.notify("Note added to the recording.", "info")

    def _say_not_recorded(self, sentence: str) -> None:
        """`sentence`, then the failure as the window said it (what failed, End session), as an error."""
        failure = self.failure_message or self.controller.held()
        self.notify(f"{sentence} {failure}" if failure else sentence, "error")
        self.update_buttons()

    def press_stop(self) -> None:
        self.controller.stop("STOP button")
        for cb in self.stop_callbacks:
            cb()
        held = self.controller.held()
        if held is not None:  # no reset can let the session go on: the failure stays said, not "reset to go on"
            self.notify(f"STOP: both devices were told to stop. Check the patient. {self.failure_message or held}",
                        "error")
            return
        self.notify("STOP: both devices were told to stop. Check the patient, then reset the interlocks to go on.",
                    "warning")

    def start_next_step(self) -> None:
        if self.step_running:
            self.notify("A step is already running.", "error")
            return
        session = self.controller.session
        step = session.next_step if session else None
        self._set_step_running(True)
        if step is not None:
            self.current_area.setText(f"Now: {step.area_label} — {step.describe()}")
        self.controller.run_next_step(self._step_done, self._step_failed)

    def _step_done(self, result: object) -> None:
        self._set_step_running(False)
        self._mark_current()
        session = self.controller.session
        if session is not None and session.next_step is None:
            self.current_area.setText("All steps done: end the session")
        elif session is not None:
            self.current_area.setText(f"Next: {session.next_step.area_label} — {session.next_step.describe()}")

    def _step_failed(self, exc: Exception) -> None:
        self._set_step_running(False)
        self.notify(user_text(exc), "error")

    def reset_interlocks(self) -> None:
        """Reset on the worker: it waits for the devices' answers to RESET."""
        self.resetting = True
        self.update_buttons()

        def done(cleared: list) -> None:
            self.resetting = False
            self.update_buttons()
            rig = self.controller.rig  # a STOP or trip after the reset cleared, before this ran: said, not "ready"
            latched = list(rig.monitor.tripped.values()) if rig is not None else []
            self.notify(reset_words(cleared, self.controller.session, latched), "error" if latched else "info")

        def failed(exc: Exception) -> None:
            self.resetting = False
            self.update_buttons()
            self.notify(user_text(exc), "error")

        self.controller.reset_interlocks(done, failed)

    def pause(self) -> None:
        try:
            self.controller.pause()
        except SessionError as exc:
            self.notify(str(exc), "error")
            return
        self.update_buttons()
        self.notify("Paused: both devices were stopped. Resume, then start the step again when ready.", "info")

    def resume(self) -> None:
        try:
            self.controller.resume()
        except SessionError as exc:
            self.notify(str(exc).capitalize(), "error")
            return
        self.update_buttons()
        self.notify("Resumed: start the next step when ready.", "info")

    def end_session(self) -> None:
        self.ending = True
        self.update_buttons()

        def failed(exc: Exception) -> None:
            self.ending = False
            self.update_buttons()
            self.notify(user_text(exc), "error")

        self.controller.end_session(self._ended, failed)

    def _ended(self, saved: object) -> None:
        self.ending = False
        self.update_buttons()
        self.plots.stop()
        self.on_ended(saved)

    # --- bus events (GUI thread) ----------------------------------------------------------------------------------
    def _step_dose(self, event: Event) -> None:
        """A light step's start (or its resumed exposure): the dose plot shows the step's total against its plan."""
        d = event.details
        if event.kind != "protocol" or d.get("modality") != "light" or \
                d.get("event") not in ("step_started", "target_remaining"):
            return
        t0 = self.controller.buffers.session_t0_host_s
        panel = self.plots.panels.get("light")
        if t0 is None or panel is None:
            return
        before = float(d.get("delivered_before_mj_cm2", 0.0) or 0.0)
        entry = (event.t_host_s - t0, before, float(d.get("target_dose_mj_cm2") or 0.0))
        if d["event"] == "target_remaining" and panel.step_doses:
            panel.step_doses[-1] = entry  # the same step, resumed: its exposure continues the step's curve
        else:
            panel.step_doses.append(entry)
        del panel.step_doses[:-50]
        self.plots.refresh()

    def on_event(self, event: Event) -> None:
        self.interlocks.on_event(event)
        alarm = self.alarms.add(event)  # None for the operator's own STOP: press_stop has said it once
        if event.kind == "interlock" and alarm is not None and \
                sum(e.kind == "interlock" for e in alarm.signals) == 1:  # once per condition, in words
            c = self.controller
            live = c.session is not None and c.saved is None
            held = c.held()
            self.notify(f"{event_sentence(event).rstrip('.')}. The devices were stopped: check the patient and the "
                        "cause" + (f". {held}" if held else ", then Reset interlocks and Resume." if live else "."),
                        "error")
        elif event.kind == "alarm" and event.source == "session" and self.controller.held() is not None:
            # the recording or the store failed (published after the hold): what is left to do, in words
            self.failure_message = f"{event_sentence(event).rstrip('.')}. {self.controller.held()}"
            self.notify(self.failure_message, "error")
            state = str(getattr(self.controller.session, "state", ""))
            self.state_label.setText(f"session: {state_words(state)} — cannot treat again: End session")
        self._step_dose(event)
        if event.kind == "state":
            to = str(event.details.get("to", ""))
            cause = "cannot treat again: End session" if self.controller.held() else event.details.get("cause", "")
            self.state_label.setText(scrub(f"session: {state_words(to)} — {cause}"))
        if event.kind == "interlock" and self.controller.session is not None and not self.controller.held():
            state = str(self.controller.session.state)  # latched while armed: no state event says so
            self.state_label.setText(f"session: {state_words(state)} — {event_sentence(event).rstrip('.')}: reset "
                                     "the interlocks to go on")
        if event.kind == "interlock_reset" and self.controller.session is not None:  # the cause is gone: say so
            state = str(self.controller.session.state)
            self.state_label.setText(f"session: {state_words(state)} — interlocks reset")
            self._mark_current()
        if event.kind in ("state", "interlock", "interlock_reset", "fault", "connection"):
            self.update_buttons()


def reset_words(cleared: list, session: object, latched: list = ()) -> str:
    """What the reset cleared, each interlock once and in words, and the next action that can succeed now: Resume
    when the session is paused, Start next step when it stayed armed (an E-stop between steps). `latched`: trips
    latched again since the reset cleared (a STOP clicked just after it: a fresh tester, 19th session), named
    instead of an action that would be refused."""

    names = list(dict.fromkeys(interlock_name(t.interlock) for t in cleared))
    what = f"Interlocks reset: {', '.join(names)}." if names else "The devices' latched faults were reset."
    again = list(dict.fromkeys(interlock_name(t.interlock) for t in latched))
    if again:
        return f"{what} Since then {', '.join(again)} latched again: check the cause, then reset again."
    state = getattr(session, "state", None)
    if state == State.PAUSED:
        return f"{what} Resume when ready."
    if state == State.ARMED:
        return f"{what} Start the next step when ready."
    return what
