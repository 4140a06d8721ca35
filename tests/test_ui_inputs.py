"""Inputs a user can get wrong give a message in the window that says what to do (never a traceback, never a modal
dialog): a serial port that does not exist, a dose out of bounds, a value that is not a number, a missing reason; and
the clinical path from patient to plan, on emulators standing in for real devices."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from conftest import make_clinician, sign_in
from helpers_identity import identity_shown
from PyQt6.QtCore import Qt

from workstation.protocols.library import seeds_dir
from workstation.ui.main_window import MainWindow

TIMEOUT_MS = 20_000


def last_message(win: MainWindow) -> str:
    return win.messages[-1][1] if win.messages else ""


def test_a_port_that_does_not_exist_says_what_to_do(qtbot, window: MainWindow, tmp_path: Path) -> None:
    win = window
    make_clinician(tmp_path / "store.sqlite3")
    win.start_page.operator.setText("dr-a")
    qtbot.mouseClick(win.start_page.clinical_button, Qt.MouseButton.LeftButton)
    assert "Type the serial port" in last_message(win)
    win.start_page.light_port.setText("/dev/ttyNOPE0")
    qtbot.mouseClick(win.start_page.clinical_button, Qt.MouseButton.LeftButton)
    sign_in(qtbot, win)
    qtbot.waitUntil(lambda: "No serial port light (/dev/ttyNOPE0)" in last_message(win), timeout=TIMEOUT_MS)
    assert "Check the cable" in last_message(win)
    assert win.start_page.isEnabled() and win.pages.currentWidget() is win.start_page
    win.start_page.light_port.setText("/dev/null")  # exists, but is no device
    qtbot.mouseClick(win.start_page.clinical_button, Qt.MouseButton.LeftButton)
    sign_in(qtbot, win)
    qtbot.waitUntil(lambda: "could not be connected" in last_message(win), timeout=TIMEOUT_MS)
    assert "Check the cable and the port name" in last_message(win)
    assert win.controller.rig is None and win.start_page.isEnabled()


def test_plan_numbers_change_only_within_bounds_and_with_a_reason(qtbot, window: MainWindow) -> None:
    win = window
    page = win.start_page
    page.scenario.setCurrentIndex(page.scenario.findData(str(seeds_dir() / "scenarios" / "combined-uneventful.toml")))
    qtbot.mouseClick(page.simulation_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.plan_view, timeout=TIMEOUT_MS)
    view = win.plan_view
    view.field_choice.setCurrentIndex(view.field_choice.findData("target_dose_mj_cm2"))
    area = win.controller.plan.areas[0]
    bounds = area.bounds["target_dose_mj_cm2"]
    assert f"{bounds.minimum:g}–{bounds.maximum:g}" in view.bounds_label.text()

    view.value_edit.setText(f"{bounds.maximum + 100:g}")
    view.reason_edit.setText("patient tolerated more")
    qtbot.mouseClick(view.apply_button, Qt.MouseButton.LeftButton)
    assert "outside the allowed target dose" in last_message(win) and "Choose a value inside it" in last_message(win)
    assert win.controller.plan.areas[0].target_dose_mj_cm2 == area.target_dose_mj_cm2

    view.value_edit.setText("lots")
    qtbot.mouseClick(view.apply_button, Qt.MouseButton.LeftButton)
    assert "as a number" in last_message(win)

    new = bounds.minimum
    view.value_edit.setText(f"{new:g}")
    view.reason_edit.setText("")
    qtbot.mouseClick(view.apply_button, Qt.MouseButton.LeftButton)
    assert "Give a reason" in last_message(win)

    view.value_edit.setText(f"{new:g}")
    view.reason_edit.setText("erythema lasted")
    qtbot.keyClick(view.reason_edit, Qt.Key.Key_Space)  # off the treatment page, Space types a space
    qtbot.keyClicks(view.reason_edit, "30 h last time")
    assert not any(text.startswith("STOP") for _, text in win.messages)
    qtbot.mouseClick(view.apply_button, Qt.MouseButton.LeftButton)
    assert win.controller.plan.areas[0].target_dose_mj_cm2 == new
    assert "erythema lasted 30 h last time" in view.reasons.toPlainText()
    light_step = next(s for s in win.controller.steps() if s.modality == "light")
    assert light_step.target_dose_mj_cm2 == new  # the session runs the changed number


def test_clinical_patient_course_and_plan_on_emulated_ports(qtbot, window: MainWindow, tmp_path: Path) -> None:
    from drivers.emulators.lamp import LampParams
    from drivers.emulators.light import LightEmulator
    from drivers.emulators.pen import PenEmulator

    emulators = [LightEmulator(seed=5, lamp=LampParams(warmup_s=0.5)).start(), PenEmulator(seed=6).start()]
    try:
        win = window
        make_clinician(tmp_path / "store.sqlite3")
        win.start_page.operator.setText("dr-a")
        win.start_page.light_port.setText(emulators[0].port)
        win.start_page.pen_port.setText(emulators[1].port)
        qtbot.mouseClick(win.start_page.clinical_button, Qt.MouseButton.LeftButton)
        sign_in(qtbot, win)
        qtbot.waitUntil(lambda: win.pages.currentWidget() is win.patient, timeout=TIMEOUT_MS)
        assert "CLINICAL" in win.banner.text()
        view = win.patient
        qtbot.mouseClick(view.findChild(type(win.start_page.clinical_button), "find_patient_button"),
                         Qt.MouseButton.LeftButton)
        assert "pseudonymous id" in last_message(win)
        view.pseudonym.setText("P-0042")
        view.family_name.setText("Smithson")
        view.birth_date.setText("1990-13-01")
        view.find_or_create()
        assert "Type both the family name and the given name" in last_message(win)
        view.given_name.setText("Alexandra")
        view.find_or_create()
        assert "is not a date: type it as YYYY-MM-DD" in last_message(win)
        view.birth_date.setText("1990-05-06")
        view.find_or_create()
        qtbot.waitUntil(lambda: view.patient is not None, timeout=TIMEOUT_MS)
        assert view.patient_label.text() == "P-0042 (new) — SMITHSON, Alexandra, born 1990-05-06"
        assert view.family_name.text() == ""  # taken: the form is cleared
        view.family_name.setText("Smith")  # the wrong patient's name, typed to check
        view.given_name.setText("Alexandra")
        view.find_or_create()
        qtbot.waitUntil(lambda: "not the one on file for P-0042" in last_message(win), timeout=TIMEOUT_MS)
        assert view.patient is None and view.areas.count() == 0  # perhaps the wrong patient: not loaded
        view.save_screening()
        assert "Find or create the patient first" in last_message(win)
        view.family_name.clear()
        view.given_name.clear()
        view.find_or_create()
        qtbot.waitUntil(lambda: view.patient is not None, timeout=TIMEOUT_MS)
        assert view.patient_label.text() == "P-0042 (found) — SMITHSON, Alexandra, born 1990-05-06"
        view.save_screening()
        qtbot.waitUntil(lambda: "screening answers saved" in last_message(win), timeout=TIMEOUT_MS)
        view.save_med()
        assert "Type the MED" in last_message(win)
        view.med.setText("99999")  # refused, not clamped: nothing saved
        view.save_med()
        assert "outside what the UVB-308" in last_message(win) and "Nothing was saved" in last_message(win)
        view.med.setText("400")
        view.save_med()
        qtbot.waitUntil(lambda: "MED 400 mJ/cm² on UVB-308" in last_message(win), timeout=TIMEOUT_MS)
        view.area_label.setText("left cheek")
        view.region.setCurrentIndex(view.region.findData("face"))
        view.lesion.setCurrentIndex(view.lesion.findData("hypopigmented_atrophic_scar"))
        view.size.setValue(6)
        view.skin.setCurrentText("III")
        view.scar_kind.setCurrentIndex(view.scar_kind.findData("flat_hypopigmented"))
        view.scar_age.setValue(18)
        view.add_area()
        qtbot.waitUntil(lambda: view.areas.count() == 1, timeout=TIMEOUT_MS)
        view.area_label.setText("right cheek")  # the same region: the clinician must say it is a distinct place
        view.add_area()
        qtbot.waitUntil(lambda: "If it is the same place, use that area" in last_message(win), timeout=TIMEOUT_MS)
        assert view.areas.count() == 1
        view.protocol.setCurrentIndex(view.protocol.findData("hypopigmented-atrophic-scar-combined"))
        view.start_course()
        qtbot.waitUntil(lambda: view.courses.count() == 1, timeout=TIMEOUT_MS)
        # the area darkened: select it (the form takes its values), reclassify it PIH, say why
        view.area_label.setText("something else")
        view.areas.setCurrentRow(0)
        assert view.area_label.text() == "left cheek" and view.size.value() == 6
        view.lesion.setCurrentIndex(view.lesion.findData("pih"))
        qtbot.mouseClick(view.correct_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "Say why" in last_message(win), timeout=TIMEOUT_MS)
        view.change_reason.setText("darker than the skin around it")
        qtbot.mouseClick(view.correct_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "corrected (lesion Hypopigmented atrophic scar → Post-inflammatory "
                        "hyperpigmentation (PIH))" in last_message(win), timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: "(PIH)" in view.areas.item(0).text(), timeout=TIMEOUT_MS)
        assert "_" not in view.areas.item(0).text()
        view.plan_visit()
        qtbot.waitUntil(lambda: win.pages.currentWidget() is win.plan_view, timeout=TIMEOUT_MS)
        assert win.plan_view.table.rowCount() == 1
        reasons = win.plan_view.reasons.toPlainText()
        assert "left cheek" in reasons and "UV is never planned" in reasons
        assert "UV record, left cheek (face, every course): 0 mJ/cm² in 0 exposures" in reasons
        assert "left cheek: expected response: As a flat hypopigmented scar" in reasons
        assert not any(s.modality == "light" for s in win.controller.plan.steps)
        plan_text = json.dumps(win.controller.plan.to_dict())
        assert identity_shown(plan_text, names=("Smithson", "Alexandra"), born=date(1990, 5, 6)) == []
        assert win.trainer is None  # no fault injection outside simulation
        assert win.controller.operator == "dr-a"
        import datetime as dt

        from workstation.store import ClinicStore, Identity

        with ClinicStore.open(tmp_path / "store.sqlite3", training=False) as store:
            patient = store.get_patient("P-0042")
            meds = store.meds(patient.id)
            (change,) = store.area_changes(store.areas(patient.id)[0].id)
            assert (store.areas(patient.id)[0].scar_kind, store.areas(patient.id)[0].scar_age_months) == (
                "flat_hypopigmented", 18)
            assert store.identity(patient.id) == Identity("Smithson", "Alexandra", dt.date(1990, 5, 6))
        assert [(m.med_mj_cm2, m.device_model) for m in meds] == [(400.0, emulators[0].model)]
        assert (change.field, change.new, change.reason, change.who) == (
            "lesion_type", "pih", "darker than the skin around it", "dr-a")
    finally:
        window.close()
        for emu in emulators:
            emu.stop()


def test_previous_sessions_response_is_entered_before_planning(qtbot, tmp_path: Path) -> None:
    import datetime as dt

    from drivers.emulators.lamp import LampParams
    from drivers.emulators.light import LightEmulator
    from drivers.emulators.pen import PenEmulator
    from workstation.protocols import load_library
    from workstation.store import ClinicStore
    from workstation.store.records import Treatment

    store_path = tmp_path / "clinic.sqlite3"
    lib = load_library()
    two_weeks_ago = dt.date.today() - dt.timedelta(days=14)
    with ClinicStore.open(store_path, training=False) as store:
        patient = store.create_patient("P-0099")
        for item in lib.tables.screening:
            store.add_screening_answer(patient.id, item.id, False, two_weeks_ago, "dr-a")
        area = store.add_area(patient.id, "left cheek", "face", "hypopigmented_atrophic_scar", 6, "III")
        course = store.create_course(patient.id, lib.get("hypopigmented-atrophic-scar-combined"), [area.id],
                                     two_weeks_ago)
        session_id = store.add_session(course.id, two_weeks_ago)
        store.add_treatment(session_id, Treatment(area.id, "light", dose_mj_cm2=260.0))

    make_clinician(store_path)
    emulators = [LightEmulator(seed=9, lamp=LampParams(warmup_s=0.5)).start(), PenEmulator(seed=10).start()]
    win = MainWindow(recordings_dir=tmp_path / "recordings", store_path=store_path)
    qtbot.addWidget(win)
    win.show()
    try:
        win.start_page.operator.setText("dr-a")
        win.start_page.light_port.setText(emulators[0].port)
        win.start_page.pen_port.setText(emulators[1].port)
        win.start_page.choose_clinical()
        sign_in(qtbot, win)
        qtbot.waitUntil(lambda: win.pages.currentWidget() is win.patient, timeout=TIMEOUT_MS)
        view = win.patient
        view.pseudonym.setText("P-0099")
        view.find_or_create()
        qtbot.waitUntil(lambda: view.previous_session_id == session_id, timeout=TIMEOUT_MS)
        assert "no response yet" in view.previous_label.text()
        view.save_previous()
        assert "Enter at least one score" in last_message(win)
        view.previous.set_scores(0, erythema_grade=1, repigmentation_band="6-25")
        view.save_previous()
        qtbot.waitUntil(lambda: "response saved" in last_message(win), timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: "response entered" in view.previous_label.text(), timeout=TIMEOUT_MS)
        view.plan_visit()
        qtbot.waitUntil(lambda: win.pages.currentWidget() is win.plan_view, timeout=TIMEOUT_MS)
        assert win.controller.plan.session_number == 2
        with ClinicStore.open(store_path, training=False) as store:
            responses = store.history(course.id)[0].responses
        assert [(r.erythema_grade, r.repigmentation_band) for r in responses] == [(1, "6-25")]
    finally:
        win.close()
        for emu in emulators:
            emu.stop()


def test_an_unexpected_error_in_the_gui_thread_is_a_message_not_a_crash(window: MainWindow, monkeypatch) -> None:
    import sys

    from workstation.ui.main_window import install_excepthook

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_excepthook(window)
    try:
        raise RuntimeError("widget exploded")
    except RuntimeError as exc:
        sys.excepthook(RuntimeError, exc, exc.__traceback__)
    level, text = window.messages[-1]
    assert level == "error" and "details are in the log" in text
    assert "RuntimeError" not in text and "exploded" not in text  # the exception's own text goes to the log only
