"""The workstation window: mode choice, the banner of the mode, a message area, and one page per stage of the visit.

Pages: start → (clinical: patient) → plan → treatment → after the session; replay is its own page. Messages for the
user go to a non-modal area under the banner: nothing here opens a dialog that waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PyQt6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from workstation.logsetup import SHOWN
from workstation.session.outcome import started_modalities
from workstation.ui.after_view import AfterView
from workstation.ui.geometry import fit_to_screen
from workstation.ui.messages import MessageBar, user_text
from workstation.ui.patient_view import PatientView
from workstation.ui.plan_view import PlanView
from workstation.ui.replay_view import ReplayView
from workstation.ui.session_controller import Places, SessionController
from workstation.ui.share_status import ShareStatusLine
from workstation.ui.sign_in import IdleWatch, SignInPage
from workstation.ui.start_page import StartPage
from workstation.ui.trainer_panel import TrainerPanel
from workstation.ui.treatment_view import TreatmentView
from workstation.ui.wording import interlock_name
from workstation.words import counted, first_upper

log = logging.getLogger(__name__)

BANNERS = {
    "simulation": ("SIMULATION — emulated devices and a training store: nothing here is a clinical record",
                   "#ef6c00"),
    "replay": ("REPLAY — a recorded session, read-only: the devices are not connected", "#1565c0"),
    "clinical": ("CLINICAL — real devices", "#2e7d32"),
}


PREFERRED_SIZE = (1400, 900)  # px: room for the plots beside the plan; smaller screens get their available size


class MainWindow(QMainWindow):
    def __init__(self, *, recordings_dir: Path, store_path: Path | None = None,
                 artifacts_dir: Path | None = None, places: Places | None = None,
                 idle_lock_minutes: float = 10.0) -> None:
        super().__init__()
        self._closed = False  # closeEvent has stopped everything
        self.setWindowTitle("Cicatrix")
        self.recordings_dir = Path(recordings_dir)
        self.artifacts_dir = artifacts_dir or self.recordings_dir
        self.mode = ""
        self.messages: list[tuple[str, str]] = []
        self.controller = SessionController.create(recordings_dir=self.recordings_dir, store_path=store_path,
                                                   places=places)
        self.controller.bridge.received.connect(self._on_event)
        self.controller.session_t0_listeners.append(self._session_t0)

        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.banner.hide()
        self.message_bar = MessageBar()
        self.message = self.message_bar.label

        self.pages = QStackedWidget()
        self.start_page = StartPage(self.choose_clinical, self.choose_simulation, self.choose_replay,
                                    recordings_dir=self.recordings_dir)
        self.patient = PatientView(self.controller, self.notify, lambda: self._plan_ready(None))
        self.plan_view = PlanView(self.controller.override, self.notify, self.start_treatment)
        self.plan_view.reset_button.clicked.connect(self._plan_reset)
        self.plan_view.back_button.clicked.connect(lambda: self.show_page(self.patient))
        self.treatment = TreatmentView(self.controller, self.notify, self.session_ended)
        self.replay = ReplayView(self.notify)
        self.after = AfterView(self.controller, self.notify, self.recordings_dir)
        self.after.alarm_events = lambda: list(self.treatment.alarms.seen)
        self.trainer: TrainerPanel | None = None
        self.sign_in = SignInPage(self._clinic_store_path, self.notify)
        self.signed_in: Any = None  # the Operator signed in for clinical mode (workstation.store.operators)
        self._locked_page: QWidget | None = None
        for page in (self.start_page, self.patient, self.plan_view, self.treatment, self.after, self.replay,
                     self.sign_in):
            self.pages.addWidget(page)
        self.idle = IdleWatch(idle_lock_minutes, self._lock_armed, self.lock, self)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self.idle)

        self.home_button = QPushButton("◀ Start page")
        self.home_button.setObjectName("home_button")
        self.home_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.home_button.setToolTip("Back to the mode choice: this ends the mode and disconnects the devices")
        self.home_button.clicked.connect(self.go_home)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        row = QHBoxLayout()
        row.addWidget(self.message_bar, 1)
        row.addWidget(self.home_button)
        layout.addLayout(row)
        self.share_status = ShareStatusLine()
        layout.addWidget(self.share_status)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)

        self.stop_keys = [QShortcut(QKeySequence(key), self) for key in (Qt.Key.Key_Escape, Qt.Key.Key_Space)]
        for sc in self.stop_keys:
            sc.setContext(Qt.ShortcutContext.WindowShortcut)
            sc.activated.connect(self.treatment.press_stop)
        self.pages.currentChanged.connect(self._page_changed)
        self._page_changed()
        self._on_first_paint: list[Callable[[], None]] = []
        self.installEventFilter(self)
        fit_to_screen(self, *PREFERRED_SIZE)
        self.start_share_copies()

    def call_on_first_paint(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the window has been painted for the first time (the start-up benchmark)."""
        self._on_first_paint.append(callback)

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:  # noqa: N802 - Qt's name
        if watched is self and event is not None and event.type() == QEvent.Type.Paint and self._on_first_paint:
            callbacks, self._on_first_paint = self._on_first_paint, []
            for callback in callbacks:
                QTimer.singleShot(0, callback)
        return super().eventFilter(watched, event)

    # --- the frame ------------------------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        self.mode = mode
        text, color = BANNERS[mode]
        self.banner.setText(text)
        self.banner.setStyleSheet(f"background:{color};color:white;font-size:16px;font-weight:bold;padding:6px")
        self.banner.setVisible(mode in BANNERS)
        self.setWindowTitle(f"Cicatrix — {mode}")

    def _session_t0(self, t0_host_s: float) -> None:
        """The recording's time 0: the trainer's log counts from it, as the plots, the report and replay do."""
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            trainer.t0_s = t0_host_s

    def notify(self, text: str, level: str = "info") -> None:
        """A message in the window's one-line area (never a modal dialog): errors say what to do. The newest message
        replaces the one shown; the earlier ones are on hover and in the message log. The log file gets the same
        words the window shows."""
        self.message_bar.show_message(text, level)
        shown = self.message_bar.current()
        self.messages.append(shown)
        log.log(logging.WARNING if level in ("error", "warning") else logging.INFO, "window %s: %s", level, shown[1],
                extra=SHOWN)

    def show_page(self, page: QWidget) -> None:
        self.pages.setCurrentWidget(page)

    def go_home(self) -> None:
        """Back to the mode choice; refused while a session is open (end it first)."""
        if self.pages.currentWidget() is self.replay:
            self.replay.close_recording()
            self._home()
            return

        def done(_: object) -> None:
            self.treatment.reset_view()
            self.treatment.stop_callbacks.clear()
            if self.trainer is not None:
                self.trainer.setParent(None)
                self.trainer.deleteLater()
                self.trainer = None
            self._home()

        self.controller.reset(done, self._failed)

    def _home(self) -> None:
        self.mode = ""
        self.signed_in, self._locked_page = None, None  # leaving clinical mode signs out
        self.controller.signed_in = False
        self.banner.hide()
        self.setWindowTitle("Cicatrix")
        self.message_bar.clear()
        self.show_page(self.start_page)

    def _page_changed(self, *_: object) -> None:
        self.home_button.setVisible(self.pages.currentWidget() is not self.start_page)
        on_treatment = self.pages.currentWidget() is self.treatment
        for sc in self.stop_keys:  # Space types into fields elsewhere; on the treatment page it is STOP
            sc.setEnabled(on_treatment)

    def _failed(self, exc: Exception) -> None:
        self.notify(user_text(exc), "error")

    # --- modes ----------------------------------------------------------------------------------------------------
    def choose_simulation(self, scenario_path: Path) -> None:
        if not scenario_path.is_file():
            self.notify(f"There is no scenario file {scenario_path}: choose one from the list.", "error")
            return
        self.set_mode("simulation")
        self.start_page.setEnabled(False)
        self.notify("Starting the emulated devices and planning the training patient's visit…", "info")

        def failed(exc: Exception) -> None:
            self.start_page.setEnabled(True)
            self._failed(exc)

        self.controller.start_simulation(scenario_path, self._plan_ready, failed)

    def _clinic_store_path(self) -> Path:
        from workstation.store import clinic_db_path

        c = self.controller
        return c.places.clinic_store or c.store_path or clinic_db_path()

    def start_share_copies(self) -> None:
        """Copy the clinic store's recordings to the clinic's recordings share, if one is set (paths.clinic_recordings)
        and the store exists: at start (copies pending from before resume) and once clinical mode connects."""
        share, store = self.controller.places.clinic_recordings, self._clinic_store_path()
        if share is not None and (not isinstance(store, Path) or store.is_file()):  # a URL: the clinic's server
            from workstation.store import ClinicStore

            self.share_status.start(lambda: ClinicStore.open(store, training=False), share)

    def choose_clinical(self, ports: dict[str, str], operator: str = "") -> None:
        """Clinical mode: sign in (the first time on a new store: create the administrator), then connect."""
        if not ports:
            self.notify("Type the serial port of at least one device (for example /dev/ttyUSB0), then connect.",
                        "error")
            return

        def signed_in(op: Any) -> None:
            self.signed_in = op
            self.controller.signed_in = True
            self.notify(f"Signed in as {op.account} ({op.display_name}, {op.role}).", "info")
            self.show_page(self.start_page)
            self._connect_clinical(ports, op.account)

        self.show_page(self.sign_in)
        self.sign_in.begin("clinical", operator or (self.signed_in.account if self.signed_in else ""), signed_in,
                           lambda: self.show_page(self.start_page))

    def _lock_armed(self) -> bool:
        """A lock makes sense in clinical mode, signed in, not already locked, and with no step running (a lock
        never hides STOP while a device works)."""
        return (self.mode == "clinical" and self.signed_in is not None and self._locked_page is None
                and not self.treatment.step_running)

    def lock(self) -> None:
        """The idle lock: the page is hidden until the signed-in account's password is typed again."""
        self._locked_page = self.pages.currentWidget()
        self.notify(f"Locked after {self.idle.minutes:g} min without input.", "info")

        def unlocked(_op: Any) -> None:
            page, self._locked_page = self._locked_page, None
            self.notify("Unlocked.", "info")
            self.show_page(page or self.start_page)

        self.show_page(self.sign_in)
        self.sign_in.lock(self.signed_in.account, unlocked)

    def _connect_clinical(self, ports: dict[str, str], operator: str) -> None:
        self.start_page.setEnabled(False)
        self.controller.operator = operator
        self.notify("Connecting the devices…", "info")

        def failed(exc: Exception) -> None:
            self.start_page.setEnabled(True)
            self._failed(exc)

        def done(identities: dict) -> None:
            self.set_mode("clinical")
            self.start_page.setEnabled(True)
            self.notify("Connected: " + ", ".join(f"{n} {i.get('model', '')}" for n, i in identities.items())
                        + ". Find or create the patient.", "info")
            self._tell_crashed()  # after "Connected", so the warning is the message left showing
            self.start_share_copies()
            self._show_patient_page()

        self.controller.start_clinical(ports, done, failed)

    def _show_patient_page(self) -> None:
        self.patient.load_library()
        self.show_page(self.patient)

    def choose_replay(self, path: Path) -> None:
        if not str(path).strip() or str(path) == ".":
            self.notify(f"Type the path of a recording (a .h5 file in {self.recordings_dir}) or press Browse….",
                        "error")
            return
        if self.controller.session is not None:
            self.notify("A session is open: end it before replaying a recording.", "error")
            return

        def opened() -> None:
            self.set_mode("replay")
            self.show_page(self.replay)

        self.replay.open(path, opened)

    # --- simulation and clinical visit ----------------------------------------------------------------------------
    def _tell_crashed(self) -> None:
        """Sessions a dead process left open were closed from their recordings when the store opened."""
        crashed, self.controller.crashed = self.controller.crashed, []  # told once, not again at the next plan
        for c in crashed:
            self.notify(first_upper(c.told), "warning")

    def _plan_ready(self, plan: object) -> None:
        self.start_page.setEnabled(True)
        self.plan_view.reset_form()
        self.plan_view.back_button.setVisible(self.mode == "clinical")
        self.plan_view.show_plan(self.controller.plan)
        if self.mode == "simulation" and self.trainer is None:
            rig = self.controller.rig
            self.trainer = TrainerPanel(rig.inject, self.notify, self.controller.scenario_action)
            self.treatment.side.addWidget(self.trainer, 1)
            self.treatment.alarms.raised.connect(self.trainer.on_alarm)
            self.treatment.alarms.acknowledged.connect(self.trainer.on_ack)
            self.treatment.stop_callbacks.append(self.trainer.on_stop)
        if self.trainer is not None and self.controller.scenario is not None:
            self.trainer.set_scenario_events(self.controller.scenario.events)
        self.treatment.alarms.operator = self.controller.operator
        self.notify("The dose engine's plan is below with its reasons. Change a number if needed, then start.",
                    "info")
        self._tell_crashed()  # after the plan's line, so the warning is the message left showing (as on Connect)
        self.show_page(self.plan_view)

    def start_treatment(self) -> None:
        self.plan_view.start_button.setEnabled(False)

        def done(steps: list) -> None:
            self.treatment.show_steps(steps)
            self.notify("Armed. Press “Start next step” for each step; STOP (or Esc, Space) stops both devices.",
                        "info")
            self.show_page(self.treatment)

        def failed(exc: Exception) -> None:
            self.plan_view.start_button.setEnabled(True)
            self._failed(exc)

        self.controller.begin_treatment(done, failed)

    def session_ended(self, saved: object) -> None:
        s = self.controller.saved
        self.after.extra_lines = lambda: []  # nothing of an earlier visit (a trainee's responses) in this one
        if self.trainer is not None and self.controller.mode == "simulation":
            trainer = self.trainer
            self.after.extra_lines = lambda: ["## Trainee's responses", *trainer.report_lines()]
        self.after.show_session()
        self.show_page(self.after)
        started = started_modalities((r["modality"], r["outcome"]) for r in s.summary["results"])
        self.notify(f"Session {s.summary['state']}: {s.summary['steps_done']} of "
                    f"{counted(s.summary['steps_planned'], 'step')} done, saved with its recording {s.recording}."
                    + (" Give the patient the aftercare advice." if started else " No treatment was started."), "info")

    # --- events ---------------------------------------------------------------------------------------------------
    def _on_event(self, event: object) -> None:
        self.treatment.on_event(event)
        self._plan_tripped()
        if self.trainer is not None:
            self.trainer.on_event(event)

    def _plan_tripped(self) -> None:
        self.plan_view.show_tripped(sorted(interlock_name(n) for n in self.treatment.interlocks.tripped()))

    def _plan_reset(self) -> None:
        """Reset interlocks from the plan page (the same reset as the treatment page's, on the worker)."""
        def done(_cleared: object) -> None:
            self._plan_tripped()
            self.notify("Interlocks reset: start the treatment when ready.", "info")

        def failed(exc: Exception) -> None:
            self._plan_tripped()
            self.notify(user_text(exc), "error")

        self.controller.reset_interlocks(done, failed)

    def closeEvent(self, event: QCloseEvent | None) -> None:  # noqa: N802 - Qt's name
        """Stops the plots, the window's worker threads and the session (the controller ends it saved). Closing
        again (Qt sends a second close to a window closed once and not yet deleted) finds it all stopped."""
        if self._closed:
            super().closeEvent(event)
            return
        self._closed = True
        self.treatment.plots.stop()
        self.replay.close_recording()
        self.replay.tasks.shutdown(wait=True)
        self.replay.verifier.shutdown(wait=True)  # close_recording cancelled it: it ends within one chunk
        self.sign_in.shutdown()
        self.share_status.shutdown()
        self.idle.timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self.idle)
        self.controller.close()
        super().closeEvent(event)


def close_on_terminate(window: MainWindow) -> Callable[[], int | None]:
    """SIGTERM (a shutdown, `kill`) and SIGHUP (its terminal closed) close the window as its close button does: the
    session ends saved ("the program was closed during the session"), the devices stopped, the recording closed with
    its checksum; before, the process died with the recording unclosed (fourth fresh tester of issue 12). A second
    signal kills at once. Python runs a handler only while the interpreter runs, so a timer wakes it every 200 ms
    while Qt waits. Returns the exit status to give (128 + the signal), None while none came."""
    import signal

    came: list[int] = []

    def terminated(signum: int, _frame: object) -> None:
        signal.signal(signum, signal.SIG_DFL)
        came.append(signum)
        QTimer.singleShot(0, window.close)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, terminated)
    wake = QTimer(window)
    wake.timeout.connect(lambda: None)
    wake.start(200)
    return lambda: 128 + came[0] if came else None


def install_excepthook(window: MainWindow) -> None:
    """An unexpected error in the GUI thread becomes a message in the window (its trace goes to the log) instead of
    ending the program: PyQt would otherwise abort on an exception escaping a slot."""
    import sys

    from workstation.recording.unclosable import freeing_error

    def hook(exc_type: type[BaseException], exc: BaseException, tb: object) -> None:
        if freeing_error(tb):  # h5py freeing an object of a file a full disk left unclosable: the log only
            logging.getLogger(__name__).warning("an error while freeing an h5py object (ignored): %s", exc)
            return
        if not isinstance(exc, Exception):
            sys.__excepthook__(exc_type, exc, tb)  # type: ignore[arg-type]
            return
        window.notify(user_text(exc.with_traceback(tb)), "error")  # type: ignore[arg-type]

    sys.excepthook = hook
