"""Planning in the window (clinical mode, emulators on real ptys): the MED is refused outside the light's range and
shown when the patient is loaded again; a new course becomes the selected one and stays so across corrections and a
reload; a protocol that does not fit the area's lesion is a warning with the reason; the plan page goes back to the
patient page without disconnecting; the plan's Change form starts empty for a new plan."""

from __future__ import annotations

from pathlib import Path

from conftest import make_clinician, sign_in
from PyQt6.QtCore import Qt

from workstation.ui.main_window import MainWindow
from workstation.ui.wording import MODALITY_NAMES

TIMEOUT_MS = 20_000


def last(win: MainWindow) -> str:
    return win.messages[-1][1] if win.messages else ""


def test_planning_fixes(qtbot, window: MainWindow, tmp_path: Path) -> None:
    from drivers.emulators.lamp import LampParams
    from drivers.emulators.light import LightEmulator
    from drivers.emulators.pen import PenEmulator

    emulators = [LightEmulator(seed=5, lamp=LampParams(warmup_s=0.5)).start(), PenEmulator(seed=6).start()]
    win = window
    try:
        make_clinician(tmp_path / "store.sqlite3")
        win.start_page.operator.setText("dr-a")
        win.start_page.light_port.setText(emulators[0].port)
        win.start_page.pen_port.setText(emulators[1].port)
        qtbot.mouseClick(win.start_page.clinical_button, Qt.MouseButton.LeftButton)
        sign_in(qtbot, win)
        qtbot.waitUntil(lambda: win.pages.currentWidget() is win.patient, timeout=TIMEOUT_MS)
        view = win.patient
        view.pseudonym.setText("P-0050")
        view.birth_date.setText("2030-01-01")
        view.family_name.setText("Doe")
        view.given_name.setText("Jo")
        view.find_or_create()
        assert "impossible" in last(win) and win.messages[-1][0] == "error"
        view.birth_date.setText("1980-01-01")
        view.find_or_create()
        qtbot.waitUntil(lambda: "P-0050 created" in last(win), timeout=TIMEOUT_MS)  # the success replaces the error
        assert win.messages[-1][0] == "info" and "impossible" not in win.message.text()

        view.med.setText("99999")
        view.save_med()
        assert "outside what" in last(win) and "Nothing was saved" in last(win)
        view.med.setText("nan")
        view.save_med()
        assert win.messages[-1][0] == "error" and "not “nan”" in last(win)  # what was typed, quoted (v15 finding 3)
        view.med.setText("420")
        view.save_med()
        qtbot.waitUntil(lambda: "MED 420 mJ/cm²" in last(win), timeout=TIMEOUT_MS)
        view.patient = None
        view.med_on_file.setText("")
        view.find_or_create()  # loaded again: the saved MED is shown
        qtbot.waitUntil(lambda: view.patient is not None, timeout=TIMEOUT_MS)
        assert "420 mJ/cm²" in view.med_on_file.text() and emulators[0].model in view.med_on_file.text()

        view.area_label.setText("left cheek")
        view.region.setCurrentIndex(view.region.findData("face"))
        view.lesion.setCurrentIndex(view.lesion.findData("hypopigmented_scar"))
        view.size.setValue(4)
        view.add_area()
        qtbot.waitUntil(lambda: view.areas.count() == 1, timeout=TIMEOUT_MS)
        assert view.region.currentText() == "Face" and "_" not in view.lesion.currentText()

        view.protocol.setCurrentIndex(view.protocol.findData("hypopigmented-scar-light"))
        view.start_course()
        qtbot.waitUntil(lambda: view.courses.count() == 1, timeout=TIMEOUT_MS)
        first = view.courses.currentData()
        view.protocol.setCurrentIndex(view.protocol.findData("atrophic-scar-needling"))  # not for this lesion
        view.start_course()
        assert win.messages[-1][0] == "warning" and "left cheek is hypopigmented scar" in last(win)
        assert "again" in last(win) and view.courses.count() == 1  # nothing started yet
        view.start_course()  # pressed again: started anyway, and it is the selected course
        qtbot.waitUntil(lambda: view.courses.count() == 2, timeout=TIMEOUT_MS)
        second = view.courses.currentData()
        assert second != first and "Course 2" in view.courses.currentText() and "Atrophic scar" in view.courses.currentText()

        view.areas.setCurrentRow(0)
        view.size.setValue(5)
        view.change_reason.setText("measured again")
        qtbot.mouseClick(view.correct_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "size 4 cm² → 5 cm²" in last(win), timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: "5 cm²" in view.areas.item(0).text(), timeout=TIMEOUT_MS)
        assert view.courses.currentData() == second  # still the course chosen

        view.courses.setCurrentIndex(view.courses.findData(first))
        view.plan_visit()
        qtbot.waitUntil(lambda: win.pages.currentWidget() is win.plan_view, timeout=TIMEOUT_MS)
        assert win.controller.plan.course_id == first
        pv = win.plan_view
        assert pv.back_button.isVisible()
        pv.value_edit.setText("nan")
        pv.reason_edit.setText("why not")
        qtbot.mouseClick(pv.apply_button, Qt.MouseButton.LeftButton)
        assert "as a number" in last(win) and "nan mJ" not in last(win)
        pv.value_edit.setText("5")
        pv.reason_edit.setText("deep")
        qtbot.mouseClick(pv.back_button, Qt.MouseButton.LeftButton)
        assert win.pages.currentWidget() is view and win.controller.rig is not None  # still connected
        view.plan_visit()
        qtbot.waitUntil(lambda: win.pages.currentWidget() is win.plan_view and pv.value_edit.text() == "",
                        timeout=TIMEOUT_MS)
        assert pv.reason_edit.text() == ""
        header = [pv.table.horizontalHeaderItem(i).text() for i in range(pv.table.columnCount())]
        assert all("_" not in h for h in header) and pv.table.item(0, 1).text() in MODALITY_NAMES.values()
    finally:
        win.close()
        for emu in emulators:
            emu.stop()
