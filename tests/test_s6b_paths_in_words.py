"""The window's word rewrites (`scrub`) leave file paths, file names and quoted text as they are (fresh tester of
issue 12: replaying /tmp/x/nan-irr/file.h5 showed "Opening /tmp/x/no number-irr/file.h5…", a path that does not
exist). The rewrites still apply to the rest of the sentence."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers_recording import write_session
from PyQt6.QtCore import Qt

from workstation.ui.main_window import MainWindow
from workstation.ui.wording import scrub

TIMEOUT_MS = 15_000
FOLDERS = ("nan-irr", "nan", "CONTACT_LOST", "dose_mj_cm2", "session a → b", "session idle → treating",
           "hypopigmented_scar", "INTERLOCK contact_lost on light", "over_temperature")


@pytest.mark.parametrize("path", [
    "/tmp/x/nan-irr/file.h5", "/tmp/x/nan/CONTACT_LOST/dose_mj_cm2/report.pdf", "~/nan/session a → b/file.h5",
    "/tmp/session idle → treating/x.hdf5", "/srv/CONTACT_LOST", "~alice/over_temperature/store.sqlite3",
    "/tmp/hypopigmented_scar/INTERLOCK contact_lost on light/a.csv", "nan.toml", "CONTACT_LOST.csv",
])
def test_a_path_is_left_as_it_is_and_the_rest_of_the_sentence_is_still_worded(path):
    shown = scrub(f"Opening {path}… the device said CONTACT_LOST, dose_mj_cm2 nan, session idle → treating.")
    assert shown == (f"Opening {path}… the device said skin contact lost, dose (mJ/cm²) no number, "
                     "Session not started → treating.")


@pytest.mark.parametrize("quoted", ["“nan”", "“CONTACT_LOST”", "'dose_mj_cm2'", "'session idle → treating'",
                                    "“INTERLOCK contact_lost on light”", "'Bob's nan'"])
def test_quoted_text_is_left_as_it_is(quoted):
    assert scrub(f"The pseudonym {quoted} is taken; nan and CONTACT_LOST are not.") == (
        f"The pseudonym {quoted} is taken; no number and skin contact lost are not.")


def test_an_apostrophe_quotes_nothing_and_units_are_not_paths():
    assert scrub("the lamp's CONTACT_LOST and the area's nan, in mJ/cm² and/or dose_mj_cm2") == (
        "the lamp's skin contact lost and the area's no number, in mJ/cm² and/or dose (mJ/cm²)")
    assert scrub("INTERLOCK contact_lost on light: over the 45 °C limit") == (
        "Skin contact interlock on the UV light: over the lamp's own 45 °C limit")
    assert scrub("Run `cicatrix replay /tmp/nan/a.h5` again") .startswith("Run “")
    assert "/tmp/nan/a.h5”" in scrub("Run `cicatrix replay /tmp/nan/a.h5` again")


def test_the_replay_window_names_a_recording_in_such_folders_as_it_is(qtbot, window: MainWindow, tmp_path: Path):
    folder = tmp_path.joinpath(*FOLDERS)
    folder.mkdir(parents=True)
    made = write_session(tmp_path / "made", 0.2)
    path = folder / "nan.h5"
    shutil.copy2(made, path)
    window.start_page.replay_path.setText(str(path))
    qtbot.mouseClick(window.start_page.replay_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(text.startswith("Opened") for _, text in window.messages), timeout=TIMEOUT_MS)
    texts = [text for _, text in window.messages]
    assert f"Opening {path}…" in texts, texts
    assert any(text.startswith("Opened nan.h5: ") for text in texts), texts
    assert window.replay.recording.path == path
