"""The window uses the places the settings give (`run`): the clinic's protocol folder is loaded with the factory
library, simulated sessions record apart from the clinic's recordings, and the clinic store records its root."""

from __future__ import annotations

import logging
from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QApplication

from workstation.protocols.library import seeds_dir
from workstation.ui.main_window import MainWindow
from workstation.ui.session_controller import Places

TIMEOUT_MS = 20_000


def _clinic_protocols(folder: Path) -> Path:
    folder.mkdir()
    text = (seeds_dir() / "protocols" / "atrophic-scar-needling.toml").read_text()
    (folder / "clinic-needling.toml").write_text(text.replace('id = "atrophic-scar-needling"',
                                                              'id = "clinic-atrophic-needling"', 1))
    return folder


def test_window_messages_go_to_the_log_too(window, caplog):
    win = window
    with caplog.at_level(logging.INFO, logger="workstation.ui.main_window"):
        win.notify("The port /dev/ttyUSB7 does not exist; check the cable.", "error")
        win.notify("Report written.", "info")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "window error: The port /dev/ttyUSB7 does not exist; check the cable."),
        (logging.INFO, "window info: Report written.")]


def test_window_loads_the_clinic_folder_and_records_simulation_apart(qtbot, tmp_path):
    places = Places(clinic_store=tmp_path / "clinic.sqlite3", training_recordings=tmp_path / "training",
                    protocol_dirs=(_clinic_protocols(tmp_path / "protocols"),))
    win = MainWindow(recordings_dir=tmp_path / "clinic-recordings", places=places)
    qtbot.addWidget(win)
    win.show()
    try:
        page = win.start_page
        page.scenario.setCurrentIndex(page.scenario.findData(str(seeds_dir() / "scenarios" /
                                                                 "pih-gentle-needling.toml")))
        qtbot.mouseClick(page.simulation_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: win.pages.currentWidget() is win.plan_view, timeout=TIMEOUT_MS)
        c = win.controller
        assert c.library.protocols["clinic-atrophic-needling"].origin == "clinic"
        assert c.store.role == "training" and c.store.path != places.clinic_store  # the clinic store is untouched
        assert not places.clinic_store.exists()
        qtbot.mouseClick(win.plan_view.start_button, Qt.MouseButton.LeftButton)  # opens the recording
        qtbot.waitUntil(lambda: win.pages.currentWidget() is win.treatment, timeout=TIMEOUT_MS)
        assert c.rig.recorder.path.is_relative_to(tmp_path / "training")
        assert not (tmp_path / "clinic-recordings").exists()
    finally:
        win.close()


def test_run_fills_in_the_ports_of_the_settings_file(qtbot, user_folders, capsys):
    from main import main
    from workstation import places

    places.config_dir().mkdir(parents=True, exist_ok=True)
    places.settings_file().write_text('[ports]\nlight = "/dev/ttyUSB0"\npen = "/dev/ttyUSB1"\n')
    before = QApplication.topLevelWidgets()  # kept alive, so no new widget can reuse an old one's identity
    assert main(["run", "--exit-after-first-show", "--pen-port", "/dev/ttyACM9"]) == 0
    (win,) = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and
              not any(w is old for old in before)]
    qtbot.addWidget(win)
    assert win.start_page.light_port.text() == "/dev/ttyUSB0"  # from the file
    assert win.start_page.pen_port.text() == "/dev/ttyACM9"  # the command line wins
    assert win.mode == ""  # filled in, not connected: the clinician still types the operator id
    assert '"first_show_monotonic_s"' in capsys.readouterr().out
