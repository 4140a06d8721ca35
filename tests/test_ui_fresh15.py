"""Fresh tester's findings on issue 15, through the window (clinical mode, emulators on real ptys)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_clinician, sign_in
from PyQt6.QtCore import Qt

from workstation.ui.main_window import MainWindow

TIMEOUT_MS = 20_000


def last(win: MainWindow) -> str:
    return win.messages[-1][1] if win.messages else ""


@pytest.fixture
def connected(qtbot, window: MainWindow, tmp_path: Path):
    """The window signed in, both emulated devices connected, on the patient page with patient P-0060 created."""
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
        view.pseudonym.setText("P-0060")
        view.birth_date.setText("1980-01-01")
        view.family_name.setText("Doe")
        view.given_name.setText("Jo")
        view.find_or_create()
        qtbot.waitUntil(lambda: "P-0060 created" in last(win), timeout=TIMEOUT_MS)
        view.save_screening()
        qtbot.waitUntil(lambda: "screening answers saved" in last(win), timeout=TIMEOUT_MS)
        yield win, emulators
    finally:
        win.close()
        for emu in emulators:
            emu.stop()


def test_med_newest_shown_and_planned_commas_and_messages(qtbot, connected) -> None:
    win, emulators = connected
    view = win.patient
    for typed in ("1,5", "250"):
        view.med.setText(typed)
        view.save_med()
        qtbot.waitUntil(lambda: "saved" in last(win), timeout=TIMEOUT_MS)
        assert win.messages[-1][0] == "info"
        win.messages.append(("info", ""))
    view.med.setText("1,500")  # a thousands comma or a decimal comma: refused, never read as 1.5
    view.save_med()
    assert win.messages[-1][0] == "error" and "1500 or 1.5" in last(win)
    view.med.setText("300")
    view.save_med()
    qtbot.waitUntil(lambda: "MED 300 mJ/cm²" in last(win), timeout=TIMEOUT_MS)
    assert "300 mJ/cm²" in view.med_on_file.text()
    view.patient = None
    view.med_on_file.setText("")
    view.find_or_create()
    qtbot.waitUntil(lambda: view.patient is not None and bool(view.med_on_file.text()), timeout=TIMEOUT_MS)
    assert "300 mJ/cm²" in view.med_on_file.text()

    for typed, words in (("99999", "An MED of 99999 mJ/cm²"), ("123456789", "123456789 mJ/cm²"),
                         ("5000.4", "5000.4 mJ/cm²"), ("nan", "not “nan”"), ("inf", "not “inf”")):
        view.med.setText(typed)
        view.save_med()
        assert win.messages[-1][0] == "error" and words in last(win), last(win)
        assert "e+" not in last(win)

    view.area_label.setText("left flank")
    view.region.setCurrentIndex(view.region.findData("abdomen"))
    view.lesion.setCurrentIndex(view.lesion.findData("hypopigmented_scar"))
    view.size.setValue(4)
    view.add_area()
    qtbot.waitUntil(lambda: view.areas.count() == 1, timeout=TIMEOUT_MS)
    view.protocol.setCurrentIndex(view.protocol.findData("hypopigmented-scar-light"))
    view.start_course()
    qtbot.waitUntil(lambda: view.courses.count() == 1, timeout=TIMEOUT_MS)
    view.plan_visit()
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.plan_view, timeout=TIMEOUT_MS)
    plan = win.controller.plan
    reasons = " ".join(plan.areas[0].reasons)
    assert "MED of 300 mJ/cm²" in reasons and "1.5" not in reasons  # the MED the page shows
    pv = win.plan_view
    pv.value_edit.setText("1,500")
    pv.reason_edit.setText("why")
    qtbot.mouseClick(pv.apply_button, Qt.MouseButton.LeftButton)
    assert win.messages[-1][0] == "error" and "1500 or 1.5" in last(win)
    pv.value_edit.setText("nan")
    qtbot.mouseClick(pv.apply_button, Qt.MouseButton.LeftButton)
    assert "not “nan”" in last(win)
    pv.value_edit.setText("12,5")
    pv.reason_edit.setText("lower")
    qtbot.mouseClick(pv.apply_button, Qt.MouseButton.LeftButton)
    assert "is now 12.5 mJ/cm²" in last(win), last(win)


def test_a_new_patient_gets_an_empty_area_form(qtbot, connected) -> None:
    """Finding 10: the area form does not keep the previous patient's values."""
    win, _emulators = connected
    view = win.patient
    view.area_label.setText("flank")
    view.region.setCurrentIndex(view.region.findData("abdomen"))
    view.size.setValue(4)
    view.add_area()
    qtbot.waitUntil(lambda: view.areas.count() == 1, timeout=TIMEOUT_MS)
    view.area_label.setText("flank")  # typed again, then another patient is opened
    view.pseudonym.setText("P-0061")
    view.find_or_create()
    qtbot.waitUntil(lambda: "P-0061 created" in last(win), timeout=TIMEOUT_MS)
    assert view.area_label.text() == "" and view.size.value() == view.size.minimum()
    assert view.region.currentIndex() == 0 and view.areas.count() == 0


def test_patient_page_columns_do_not_move_and_texts_fit(qtbot, connected) -> None:
    """Finding 9: the three columns keep their widths when an area or a course is added; nothing is cut at 1280."""
    win, _emulators = connected
    win.resize(1280, 800)
    view = win.patient
    qtbot.wait(100)
    columns = [view.screening.parentWidget().parentWidget(), view.area_label.parentWidget(),
               view.protocol.parentWidget()]
    before = [c.geometry() for c in columns]
    view.area_label.setText("abdomen-left-lower-quadrant-long-scar-name")
    view.region.setCurrentIndex(view.region.findData("abdomen"))
    view.lesion.setCurrentIndex(view.lesion.findData("hypopigmented_atrophic_scar"))
    view.size.setValue(4)
    view.add_area()
    qtbot.waitUntil(lambda: view.areas.count() == 1, timeout=TIMEOUT_MS)
    view.protocol.setCurrentIndex(view.protocol.findData("hypopigmented-atrophic-scar-combined"))
    view.start_course()
    qtbot.waitUntil(lambda: view.courses.count() == 1, timeout=TIMEOUT_MS)
    qtbot.wait(100)
    assert [c.geometry() for c in columns] == before
    widths = {c.width() for c in columns}
    assert max(widths) - min(widths) <= 2  # equal columns
    assert view.courses.toolTip() or view.courses.itemData(0, Qt.ItemDataRole.ToolTipRole)
    assert view.med_on_file.wordWrap()
    for box in (view.protocol, view.courses):
        assert box.geometry().right() <= box.parentWidget().width()  # inside its column, never beyond it
