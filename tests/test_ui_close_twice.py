"""Closing the window twice, shown or never shown, ends it once and raises nothing (the second close found the
window's worker pools shut down: 'cannot schedule new futures after shutdown')."""

from __future__ import annotations

import pytest

from workstation.ui.main_window import MainWindow


@pytest.mark.parametrize("shown", [True, False])
def test_the_window_closed_twice_closes_once_and_raises_nothing(qtbot, tmp_path, shown: bool) -> None:
    win = MainWindow(recordings_dir=tmp_path / "recordings", store_path=tmp_path / "store.sqlite3")
    qtbot.addWidget(win)
    if shown:
        win.show()
    errors: list[BaseException] = []
    with qtbot.captureExceptions() as caught:
        win.close()
        win.close()
    errors.extend(e for _, e, _ in caught)
    assert not errors, errors
    assert not win.isVisible()
