"""The replay window's integrity line (SHA-256, signature) fits the window at its minimum size (fresh tester of
issue 12: the line was one fixed line, cut at the window's edge). It wraps, long runs (a digest, a file name) break
anywhere, the whole text is selectable and the tooltip holds it exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers_load import scenario_run
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QApplication
from test_ui_replay import TIMEOUT_MS, open_replay

from workstation.recording.format import checksum_path
from workstation.ui.main_window import MainWindow
from workstation.ui.wording import breakable as _breakable

DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = scenario_run("combined-uneventful", tmp_path_factory.mktemp("recordings"))
    assert result.recording is not None
    return result.recording


def _at_minimum_size(qtbot, win: MainWindow) -> None:
    size = win.minimumSizeHint().expandedTo(win.minimumSize())
    win.resize(size)
    qtbot.waitUntil(lambda: win.width() <= size.width() + 1, timeout=TIMEOUT_MS)
    QApplication.processEvents()


def _fits(label) -> None:
    """Every line of the label is inside it: no unbreakable piece wider than the label, all the lines tall enough."""
    width = label.width()
    assert 0 < width <= label.parentWidget().width()
    text = label.text()
    pieces = [p for p in re.split(r"[\s\u200b]+", re.sub(r"<[^>]+>", "", text)) if p]
    metrics = label.fontMetrics()
    widest = max(pieces, key=metrics.horizontalAdvance)
    assert metrics.horizontalAdvance(widest) <= width, (widest, width)
    assert label.wordWrap() and label.heightForWidth(width) <= label.height(), (label.heightForWidth(width),
                                                                                 label.height())


def test_breakable_splits_only_long_runs():
    assert _breakable("SHA-256 matches; signed") == "SHA-256 matches; signed"
    assert _breakable(DIGEST).replace("\u200b", "") == DIGEST
    assert max(len(p) for p in _breakable(f"digest {DIGEST}.").split("\u200b")) <= 16 + len("digest ")


def test_a_mismatch_with_its_long_words_fits_at_the_minimum_size_and_the_tooltip_has_it_all(
        qtbot, window: MainWindow, recording: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / recording.name
    shutil.copy(recording, copy)
    # a digest the file does not have, and no signature to prove the file (with its signature the file is proven
    # intact and only the .sha256 is said to be wrong: tests/test_recording_signature.py)
    checksum_path(copy).write_text(f"{DIGEST}  {copy.name}\n")
    win = window
    _at_minimum_size(qtbot, win)
    open_replay(qtbot, win, copy)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.replay, timeout=TIMEOUT_MS)
    view = win.replay
    qtbot.waitUntil(lambda: view.checksum is not None, timeout=TIMEOUT_MS)
    _at_minimum_size(qtbot, win)
    label = view.integrity
    assert view.checksum.intact is False and "DOES NOT MATCH" in label.text()
    assert label.toolTip().startswith(view.checksum.text) and "\u200b" not in label.toolTip()
    assert label.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    _fits(label)


def test_a_line_holding_a_whole_digest_fits_at_the_minimum_size(qtbot, window: MainWindow, recording: Path) -> None:
    win = window
    open_replay(qtbot, win, recording)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.replay, timeout=TIMEOUT_MS)
    view = win.replay
    qtbot.waitUntil(lambda: view.checksum is not None, timeout=TIMEOUT_MS)
    text = f"Integrity: SHA-256 {DIGEST} matches {recording.name}.sha256; {view.checksum.text}."
    view._show_integrity(text)
    _at_minimum_size(qtbot, win)
    assert view.integrity.toolTip() == text
    _fits(view.integrity)
