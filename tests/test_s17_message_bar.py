"""A long refusal in the window's message area is shown whole (issue 17's fresh tester, item 3): "P-0042 is being
treated in room 2 by dr-a since 10:14; …" was cut off. At the window's minimum size the area wraps and grows to show
the whole sentence, which can be selected and copied, and is on hover; a short message is one line again
(pytest-qt, offscreen; the sentence made by the store from a real lease)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import QRect, Qt
from PyQt6.QtWidgets import QApplication

from workstation.protocols import load_library
from workstation.store import ClinicStore
from workstation.store.leases import refusal_sentence
from workstation.ui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[1]


def _lease_refusal(tmp_path) -> str:
    with ClinicStore.open(tmp_path / "rooms.sqlite3", training=False) as store:
        p = store.create_patient("P-0042")
        area = store.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 3.5, "III")
        course = store.create_course(p.id, load_library().get("hypopigmented-scar-light"), [area.id],
                                     dt.date(2026, 3, 1))
        lease, _ = store.take_lease(course.id, room="room 2", account="dr-a", process="1:1", host="room-2-pc")
        return refusal_sentence(store, lease)


def _wrapped_height(label, text: str) -> int:
    rect = label.contentsRect()
    return label.fontMetrics().boundingRect(QRect(0, 0, rect.width(), 10_000), Qt.TextFlag.TextWordWrap,
                                            text).height()


def test_a_lease_refusal_is_shown_whole_at_the_minimum_window_size(qtbot, window: MainWindow, tmp_path) -> None:
    sentence = _lease_refusal(tmp_path)
    assert sentence.startswith("P-0042 is being treated in room 2 by dr-a since ") and len(sentence) > 200
    win = window
    win.resize(win.minimumSizeHint())
    qtbot.waitUntil(lambda: win.width() <= win.minimumSizeHint().width() + 1)
    bar, label = win.message_bar, win.message
    win.notify(sentence, "error")
    qtbot.wait(20)
    full = f"Error: {sentence}"
    assert label.text() == full == bar.full_text()  # not cut: every word on screen
    assert label.wordWrap() and label.isVisible()
    assert bar.height() > bar.one_line_px  # it grew: more than one line at this width
    assert _wrapped_height(label, full) <= label.contentsRect().height()  # the wrapped text fits the label
    assert label.geometry().bottom() < win.pages.mapTo(bar.parentWidget(), win.pages.rect().topLeft()).y() or \
        bar.mapTo(win, bar.rect().bottomLeft()).y() <= win.pages.mapTo(win, win.pages.rect().topLeft()).y()
    assert sentence in label.toolTip()  # and on hover
    # selectable and copyable: Ctrl+C copies what is selected
    assert label.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    label.setFocus()
    label.setSelection(0, len(full))
    assert label.selectedText() == full
    QApplication.clipboard().clear()
    qtbot.keyClick(label, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.clipboard().text() == full
    # a short message afterwards: one line again, and the page back where it was
    win.notify("Patient P-0042 found.", "info")
    qtbot.wait(20)
    assert bar.height() == bar.one_line_px and label.text() == "Info: Patient P-0042 found."


def test_the_message_area_never_widens_the_window_whatever_it_says(qtbot, window: MainWindow, tmp_path) -> None:
    before = window.minimumSizeHint().width()
    window.notify(_lease_refusal(tmp_path) * 3, "error")
    qtbot.wait(20)
    assert window.minimumSizeHint().width() == before


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed (CI installs it)")
def test_a_screenshot_under_xvfb_shows_the_whole_refusal_inside_the_area(tmp_path) -> None:
    """The window on a real X server at its minimum size: the refusal's lines of text are all inside the pink
    error area (none cut at its bottom edge). The PNG is kept in artifacts/screenshots/ for people to look at."""
    from PyQt6.QtGui import QImage
    from test_screenshot import rgb_array

    shot = ROOT / "artifacts" / "screenshots" / "s17-lease-refusal-minimum-size.png"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    proc = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable,
                           str(ROOT / "tests" / "s17_message_shot.py"), str(shot)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    geo = json.loads(proc.stdout.strip().splitlines()[-1])
    assert geo["shown"].startswith("Error: P-0042 is being treated in room 2") and geo["shown"].endswith("then.")
    pixels = rgb_array(QImage(str(shot)))
    area = pixels[geo["y"]:geo["y"] + geo["h"], geo["x"]:geo["x"] + geo["w"]].astype(int)
    pink = (np.abs(area - np.array((0xFF, 0xCD, 0xD2))).sum(axis=2) <= 12)
    assert pink.mean() > 0.6  # the error's colour fills the area
    ink_rows = np.flatnonzero((area.sum(axis=2) < 300).sum(axis=1) > 2)  # rows with dark text pixels
    assert len(ink_rows), "no text drawn"
    font_px = geo["one_line_px"] - 14  # messages.PADDING_PX
    assert ink_rows[-1] - ink_rows[0] > 1.5 * font_px and geo["h"] > geo["one_line_px"]  # wrapped: 2 lines or more
    assert ink_rows[-1] < geo["h"] - 2  # the last line's ink ends inside the area: nothing cut at the bottom
