"""Sign-in before clinical mode through the window (pytest-qt, real emulators on ptys, real SQLite): the first start
creates the administrator, wrong passwords and roles are refused in words, every write is the signed-in account's,
and the idle lock hides the page until the password is typed again (never while a step runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CLINICIAN_PASSWORD, make_clinician, sign_in
from PyQt6.QtCore import Qt

from workstation.store import ClinicStore, trail
from workstation.store import operators as ops
from workstation.ui.main_window import MainWindow

TIMEOUT_MS = 20_000


@pytest.fixture()
def devices():
    from drivers.emulators.lamp import LampParams
    from drivers.emulators.light import LightEmulator
    from drivers.emulators.pen import PenEmulator

    emulators = [LightEmulator(seed=11, lamp=LampParams(warmup_s=0.3)).start(), PenEmulator(seed=12).start()]
    yield emulators
    for emu in emulators:
        emu.stop()


def _connect(qtbot, win: MainWindow, devices, account: str = "dr-a") -> None:
    win.start_page.operator.setText(account)
    win.start_page.light_port.setText(devices[0].port)
    win.start_page.pen_port.setText(devices[1].port)
    qtbot.mouseClick(win.start_page.clinical_button, Qt.MouseButton.LeftButton)


def _last(win: MainWindow) -> str:
    return win.messages[-1][1] if win.messages else ""


def _window(qtbot, tmp_path: Path, **kw) -> MainWindow:
    win = MainWindow(recordings_dir=tmp_path / "recordings", store_path=tmp_path / "clinic.sqlite3", **kw)
    qtbot.addWidget(win)
    win.show()
    return win


def test_the_first_clinical_start_creates_the_administrator(qtbot, tmp_path, devices):
    win = _window(qtbot, tmp_path)
    _connect(qtbot, win, devices, "boss")
    page = win.sign_in
    qtbot.waitUntil(lambda: win.pages.currentWidget() is page and page.display_name.isVisible(), timeout=TIMEOUT_MS)
    assert "administrator" in page.title.text()
    page.display_name.setText("Clinic Boss")
    for first, again, said in (("a-long-password", "another-password", "The two passwords differ"),
                               ("short", "short", "at least 10 characters")):
        page.password.setText(first)
        page.password_again.setText(again)
        qtbot.mouseClick(page.submit, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda said=said: said in _last(win), timeout=TIMEOUT_MS)
        assert win.pages.currentWidget() is page and page.password.text() == ""  # never kept in the field
    page.password.setText("a-long-password")
    page.password_again.setText("a-long-password")
    qtbot.mouseClick(page.submit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.patient, timeout=TIMEOUT_MS)
    assert win.signed_in.account == "boss" and win.signed_in.role == "administrator"
    assert win.controller.operator == "boss"
    win.patient.pseudonym.setText("P-0042")
    win.patient.find_or_create()
    qtbot.waitUntil(lambda: win.patient.patient is not None, timeout=TIMEOUT_MS)
    win.close()
    with ClinicStore.open(tmp_path / "clinic.sqlite3", training=False) as store:
        assert [o.account for o in ops.operators(store)] == ["boss"]
        created = [e for e in trail.entries(store._conn) if e.table_name == "patients"]
        assert [e.who for e in created] == ["boss"]  # the write is the signed-in account's


def test_wrong_password_and_role_are_refused_and_cancel_goes_back(qtbot, tmp_path, devices):
    make_clinician(tmp_path / "clinic.sqlite3")
    with ClinicStore.open(tmp_path / "clinic.sqlite3", training=False) as store:
        ops.add(store, "tr-b", "Trainer B", "trainer", "trainer-password", created_by="admin")
    win = _window(qtbot, tmp_path)
    _connect(qtbot, win, devices)
    sign_in(qtbot, win, "dr-a", "not-the-password")
    qtbot.waitUntil(lambda: "The account or the password is wrong" in _last(win), timeout=TIMEOUT_MS)
    assert win.pages.currentWidget() is win.sign_in and win.controller.rig is None
    sign_in(qtbot, win, "tr-b", "trainer-password")
    qtbot.waitUntil(lambda: "may not use clinical mode" in _last(win), timeout=TIMEOUT_MS)
    assert win.controller.rig is None
    qtbot.mouseClick(win.sign_in.cancel, Qt.MouseButton.LeftButton)
    assert win.pages.currentWidget() is win.start_page and win.signed_in is None
    _connect(qtbot, win, devices)
    sign_in(qtbot, win)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.patient, timeout=TIMEOUT_MS)
    assert win.signed_in.account == "dr-a"


def test_the_idle_lock_hides_the_page_until_the_password(qtbot, tmp_path, devices):
    make_clinician(tmp_path / "clinic.sqlite3")
    win = _window(qtbot, tmp_path, idle_lock_minutes=0.002)  # 0.12 s
    win.idle.timer.setInterval(20)
    _connect(qtbot, win, devices)
    sign_in(qtbot, win)
    # connected (the patient page), then locked after 0.12 s without input: the page it hid is kept
    qtbot.waitUntil(lambda: win._locked_page is win.patient and win.pages.currentWidget() is win.sign_in,
                    timeout=TIMEOUT_MS)
    page = win.sign_in
    assert "Locked" in page.title.text() and page.account.isReadOnly() and not page.cancel.isVisible()
    page.password.setText("wrong-password")
    qtbot.mouseClick(page.submit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "password is wrong" in _last(win), timeout=TIMEOUT_MS)
    assert win.pages.currentWidget() is page
    win.idle.minutes = 0  # so the test's own pause does not lock again
    page.password.setText(CLINICIAN_PASSWORD)
    qtbot.mouseClick(page.submit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.patient, timeout=TIMEOUT_MS)
    # Never while a step runs: STOP stays on screen while a device works.
    win.idle.minutes = 0.002
    win.treatment.step_running = True
    win.show_page(win.treatment)
    qtbot.wait(400)
    assert win.pages.currentWidget() is win.treatment
    win.treatment.step_running = False
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.sign_in, timeout=TIMEOUT_MS)


def test_simulation_needs_no_sign_in(qtbot, tmp_path):
    win = _window(qtbot, tmp_path)
    win.start_page.choose_simulation()
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.plan_view, timeout=TIMEOUT_MS)
    assert win.signed_in is None


def test_notes_and_reasons_with_the_identity_are_refused_and_a_disabled_account_stops(qtbot, tmp_path, devices):
    from datetime import date

    from workstation.store import Identity

    make_clinician(tmp_path / "clinic.sqlite3")
    win = _window(qtbot, tmp_path)
    _connect(qtbot, win, devices)
    sign_in(qtbot, win)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.patient, timeout=TIMEOUT_MS)
    done = []
    win.controller.store_call(lambda s: s.create_patient("P-0200", identity=Identity("Smith", "John",
                                                                                       date(1970, 5, 4))),
                              done.append, done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=TIMEOUT_MS)
    visit = win.controller.visit
    visit._identity = Identity("Smith", "John", date(1970, 5, 4))  # as plan_course reads it for the patient
    for text in ("John tolerated well", "pt born 4 May 1970"):
        with pytest.raises(Exception, match="contains the patient's"):
            visit.guard_text(text, "note")
    with ClinicStore.open(tmp_path / "clinic.sqlite3", training=False) as admin:
        ops.sign_in(admin, "admin", "admin-password", "accounts")
        ops.set_active(admin, "dr-a", False, reason="left the clinic")
    win.patient.pseudonym.setText("P-0201")
    win.patient.find_or_create()
    qtbot.waitUntil(lambda: "dr-a was disabled by an administrator" in _last(win), timeout=TIMEOUT_MS)
