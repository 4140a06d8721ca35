"""A tour of the window that saves a screenshot of every page (run under Xvfb in CI; the PNGs are kept as artifacts):

    xvfb-run -a -s "-screen 0 1920x1080x24" python -m workstation.ui.screenshots artifacts/screenshots [1280x800]

start page → simulation: plan, treatment with an alarm, after the session → replay of that session's recording →
clinical: patient and course with its body map, and the plan (on emulators standing in for the serial devices).
The window has the size given (default 1280×800); the files are named `NN-page-WxH.png`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QGuiApplication
from PyQt6.QtWidgets import QApplication, QWidget

from workstation.protocols.library import seeds_dir
from workstation.ui.main_window import MainWindow

STEP_TIMEOUT_S = 40.0
Wait = float | Callable[[], bool]


def save(widget: QWidget, path: Path) -> None:
    """The window as the screen shows it (X server), or as Qt renders it (offscreen)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    screen = widget.screen()
    use_screen = QGuiApplication.platformName() == "xcb" and screen is not None
    picture = screen.grabWindow(int(widget.winId())) if use_screen else widget.grab()
    if not picture.save(str(path), "PNG"):
        raise OSError(f"could not write the screenshot {path}")
    print(f"screenshot saved to {path}", flush=True)


PAGES = ("01-start", "02-simulation-plan", "03-simulation-treatment", "04-simulation-after-session", "05-replay",
         "06-clinical-patient", "07-clinical-plan", "08-clinical-first-sign-in")


def tour(out: Path, work: Path, size: tuple[int, int] = (1280, 800)) -> Iterator[Wait]:
    w, h = size

    def shot(window: QWidget, page: str) -> None:
        save(window, out / f"{page}-{w}x{h}.png")

    win = MainWindow(recordings_dir=work / "recordings", store_path=work / "training.sqlite3")
    win.resize(w, h)
    win.show()
    win.set_mode("simulation")
    yield 0.5
    shot(win, "01-start")

    win.start_page.scenario.setCurrentIndex(
        win.start_page.scenario.findData(str(seeds_dir() / "scenarios" / "combined-uneventful.toml")))
    win.start_page.choose_simulation()
    yield lambda: win.pages.currentWidget() is win.plan_view
    shot(win, "02-simulation-plan")

    win.plan_view.start_button.click()
    yield lambda: win.pages.currentWidget() is win.treatment
    t = win.treatment
    t.start_next_step()
    yield lambda: not t.step_running
    t.start_next_step()
    pen = win.controller.rig.emulators["pen"]
    yield lambda: pen.state().stroke_rate_hz > 80.0  # ramped up (on a loaded machine it takes longer: wait for it)
    yield 0.5
    win.trainer.inject("pen", "contact_lost")
    yield lambda: bool(t.alarms.alarms) and not t.step_running
    yield 0.8
    shot(win, "03-simulation-treatment")

    t.alarms.acknowledge_selected()
    t.end_session()
    yield lambda: win.pages.currentWidget() is win.after
    win.after.responses.cellWidget(0, 1).setCurrentText("1")
    win.after.save_responses()
    yield lambda: bool(win.after.course.series.get("response"))
    yield 0.5
    shot(win, "04-simulation-after-session")
    recording = win.controller.saved.recording
    win.close()

    replay = MainWindow(recordings_dir=work / "recordings")
    replay.resize(w, h)
    replay.show()
    replay.start_page.replay_path.setText(str(recording))
    replay.start_page.choose_replay()
    yield lambda: replay.pages.currentWidget() is replay.replay
    view = replay.replay
    view.speed.setCurrentText("2x")
    view.play_button.click()
    yield lambda: not view.source.playing
    view.step(-1, alarms_only=True)  # back to the alarm, with its lead-up
    yield 0.8
    shot(replay, "05-replay")
    replay.close()

    from drivers.emulators.lamp import LampParams
    from drivers.emulators.light import LightEmulator
    from drivers.emulators.pen import PenEmulator

    emulators = [LightEmulator(seed=7, lamp=LampParams(warmup_s=0.5)).start(), PenEmulator(seed=8).start()]
    clinical = MainWindow(recordings_dir=work / "recordings", store_path=work / "clinic.sqlite3")
    clinical.resize(w, h)
    clinical.show()
    clinical.start_page.operator.setText("dr-a")
    clinical.start_page.light_port.setText(emulators[0].port)
    clinical.start_page.pen_port.setText(emulators[1].port)
    clinical.start_page.choose_clinical()
    signing = clinical.sign_in  # a new clinic store: the first start creates the administrator account
    yield lambda: clinical.pages.currentWidget() is signing and signing.display_name.isVisible()
    signing.display_name.setText("Dr A. Example")
    yield 0.3
    shot(clinical, "08-clinical-first-sign-in")
    signing.password.setText("a-long-password")
    signing.password_again.setText("a-long-password")
    signing.submit.click()
    yield lambda: clinical.pages.currentWidget() is clinical.patient
    p = clinical.patient
    p.pseudonym.setText("P-0042")
    p.find_or_create()
    yield lambda: p.patient is not None
    for n, (label, region, lesion) in enumerate((("left cheek", "face", "hypopigmented_atrophic_scar"),
                                                 ("lower back", "back", "pih"),
                                                 ("abdomen left", "abdomen", "striae_alba")), start=1):
        p.area_label.setText(label)
        p.region.setCurrentIndex(p.region.findData(region))
        p.lesion.setCurrentIndex(p.lesion.findData(lesion))
        p.size.setValue(6)
        p.skin.setCurrentText("III")
        p.add_area()
        yield lambda n=n: p.areas.count() == n
    p.save_screening()  # every answer "no": the plan has its numbers
    yield lambda: "screening answers saved" in clinical.messages[-1][1]
    p.protocol.setCurrentIndex(p.protocol.findData("hypopigmented-atrophic-scar-combined"))
    for i in range(1, p.areas.count()):
        p.areas.item(i).setCheckState(Qt.CheckState.Unchecked)
    p.start_course()
    yield lambda: p.courses.count() == 1
    p.areas.setCurrentRow(0)
    yield 0.3
    shot(clinical, "06-clinical-patient")
    p.plan_visit()
    yield lambda: clinical.pages.currentWidget() is clinical.plan_view
    yield 0.3
    shot(clinical, "07-clinical-plan")
    clinical.close()
    for emu in emulators:
        emu.stop()


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path("artifacts/screenshots")
    w, _, h = (argv[1] if len(argv) > 1 else "1280x800").partition("x")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="cicatrix-screens-") as tmp:
        steps = tour(out, Path(tmp), (int(w), int(h)))
        state: dict[str, object] = {"wait": 0.0, "since": time.monotonic(), "code": 0}

        def advance() -> None:
            wait, since = state["wait"], float(state["since"])  # type: ignore[arg-type]
            now = time.monotonic()
            if isinstance(wait, float):
                ready = now - since >= wait
            else:
                ready = bool(wait())  # type: ignore[operator]
                if not ready and now - since > STEP_TIMEOUT_S:
                    print(f"screenshot tour: a step did not finish within {STEP_TIMEOUT_S:.0f} s", file=sys.stderr)
                    state["code"] = 1
                    app.quit()
                    return
            if not ready:
                return
            try:
                state["wait"], state["since"] = next(steps), time.monotonic()
            except StopIteration:
                app.quit()

        timer = QTimer()
        timer.timeout.connect(advance)
        timer.start(50)
        app.exec()
        timer.stop()
    return int(state["code"])  # type: ignore[call-overload]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
