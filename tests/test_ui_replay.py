"""Replay in the window: a recording made by the headless runner opens, its events are marked on the timeline, and
the view seeks (plots cleared and refilled from there), steps to the next event and plays."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from helpers_load import scenario_run
from PyQt6.QtCore import Qt

from workstation.ui.main_window import MainWindow
from workstation.ui.wording import event_sentence

TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = scenario_run("contact-lost-mid-exposure", tmp_path_factory.mktemp("recordings"))
    assert result.recording is not None
    return result.recording


def open_replay(qtbot, win: MainWindow, path: Path) -> None:
    win.start_page.replay_path.setText(str(path))
    qtbot.mouseClick(win.start_page.replay_button, Qt.MouseButton.LeftButton)


def test_replay_opens_seeks_and_steps(qtbot, window: MainWindow, recording: Path) -> None:
    win = window
    open_replay(qtbot, win, recording)
    qtbot.waitUntil(lambda: win.pages.currentWidget() is win.replay, timeout=TIMEOUT_MS)
    view = win.replay
    assert win.banner.isVisible() and "REPLAY" in win.banner.text()
    n_events = len(view.recording.events)
    related = sum(r in ("related", "action-related") for r in view._roles)  # one tick per alarm condition
    assert n_events > 0 and len(view.timeline.markers) == n_events - related and related >= 1
    assert any(color == "#d32f2f" for _, color in view.timeline.markers)  # the contact_lost trip, in red
    duration = view.source.duration_s
    # the file is checked against the SHA-256 the recorder saved at close, off the GUI thread
    qtbot.waitUntil(lambda: view.checksum is not None, timeout=TIMEOUT_MS)
    assert view.checksum.intact is True and "SHA-256 matches" in view.integrity.text()
    assert not view.progress.isVisible()

    qtbot.mouseClick(view.next_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.events.count() >= 1, timeout=TIMEOUT_MS)
    first = view.recording.events[0]
    assert event_sentence(first) in view.events.item(0).text()

    # seek to 60 % on the timeline, paused: the plots are filled from the file up to there at once
    fills = view.fills
    view.timeline.setValue(60_000)
    assert view.source.position_s == pytest.approx(0.6 * duration)
    # up to the file's last light sample at or before the position (a live recording made on a loaded machine can
    # have a gap there: judged against the file, not against the position). A fill asked before the seek (the event
    # step's) can land first, so the test waits for the seek's own fill: the one that reaches that sample.
    rows = view.recording.telemetry("light", None, view.source.position_s)
    last_in_file_s = float(rows["t_host_s"][-1]) - view.recording.meta.t0_host_s

    def filled_to_the_position() -> bool:
        stats = view.buffers.stats("light")
        return stats.samples_total > 100 and stats.t_last_s == pytest.approx(last_in_file_s, abs=0.05)

    qtbot.waitUntil(lambda: view.fills > fills and filled_to_the_position(), timeout=TIMEOUT_MS)
    view.speed.setCurrentText("10x")
    qtbot.mouseClick(view.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.source.playing, timeout=TIMEOUT_MS)  # played to the end
    qtbot.waitUntil(lambda: view.timeline.value() == 100_000, timeout=TIMEOUT_MS)  # the clock follows the position
    # every event in words: no identifier (a tester saw "Session connected → plan_loaded" in this list)
    qtbot.waitUntil(lambda: view.events.count() == len(view.recording.events), timeout=TIMEOUT_MS)
    shown = [view.events.item(i).text() for i in range(view.events.count())]
    assert any("Session connected → planned" in t for t in shown), shown
    assert not [t for t in shown if re.search(r"\b[A-Za-z]+_[A-Za-z_]+\b", t)], shown
    view.plots.refresh()
    x, _ = view.plots.panels["light"].curves["irradiance_mw_cm2"].getData()
    assert x is not None and len(x) > 0 and x.max() >= duration - 0.1

    # back to the start: the event list is rebuilt for the position (not duplicated); the next event is the first
    view.seek(0.0)
    qtbot.waitUntil(lambda: view.source.position_s == 0.0, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: view.events.count() == int((view._event_t <= 0).sum()), timeout=TIMEOUT_MS)
    qtbot.mouseClick(view.next_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.events.currentItem() is not None, timeout=TIMEOUT_MS)
    assert event_sentence(first) in view.events.currentItem().text()
    texts = [view.events.item(i).text() for i in range(view.events.count())]
    times = [float(t.split(" s ")[0]) for t in texts]
    assert times == sorted(times) and len(texts) == len(set(zip(times, texts, strict=True)))


def test_a_file_that_is_not_a_recording_gives_a_message(qtbot, window: MainWindow, tmp_path: Path) -> None:
    win = window
    bogus = tmp_path / "notes.h5"
    bogus.write_text("not a recording")
    open_replay(qtbot, win, bogus)
    qtbot.waitUntil(lambda: win.messages[-1][0] == "error", timeout=TIMEOUT_MS)
    assert "not an HDF5 file" in win.messages[-1][1] and "Choose a recording" in win.messages[-1][1]
    assert win.pages.currentWidget() is win.start_page
    open_replay(qtbot, win, tmp_path / "missing.h5")
    qtbot.waitUntil(lambda: "no such recording" in win.messages[-1][1], timeout=TIMEOUT_MS)
    open_replay(qtbot, win, Path(""))
    assert "Type the path of a recording" in win.messages[-1][1]


def test_a_recording_changed_after_closing_is_an_alarm(qtbot, window: MainWindow, recording: Path,
                                                       tmp_path: Path) -> None:
    win = window
    copy = tmp_path / recording.name
    shutil.copyfile(recording, copy)
    (tmp_path / (recording.name + ".sha256")).write_text(f"{'0' * 64}  {recording.name}\n")
    open_replay(qtbot, win, copy)
    view = win.replay
    qtbot.waitUntil(lambda: view.checksum is not None, timeout=TIMEOUT_MS)
    assert view.checksum.intact is False
    assert "DOES NOT MATCH" in view.integrity.text()
    assert any(kind == "error" and "may not be what was recorded" in text for kind, text in win.messages)
    assert view.source is not None  # the engineer can still replay it, warned


def test_closing_a_recording_abandons_its_checksum(qtbot, window: MainWindow, tmp_path: Path) -> None:
    view = window.replay
    big = tmp_path / "big.h5"
    big.write_bytes(b"\0" * (256 * 2**20))  # 64 chunks: long enough to be cancelled midway
    (tmp_path / "big.h5.sha256").write_text(f"{'0' * 64}  big.h5\n")
    view.verify_checksum(big)
    assert not view.progress.isHidden() and view.progress.maximum() == 100
    qtbot.waitUntil(lambda: view._verify_fraction > 0, timeout=TIMEOUT_MS)
    view.close_recording()
    assert view.progress.isHidden() and view.integrity.text() == ""
    future = view.verifier.run(lambda: None, lambda _r: None, lambda _e: None)
    future.result(timeout=5)  # the hash stopped within a chunk or two: the verifier is free again
    qtbot.wait(200)  # let the abandoned task's outcome be delivered
    assert view.checksum is None and view.integrity.text() == ""
    assert view._verify_fraction < 1.0


def test_a_partial_recording_with_a_long_reason_keeps_the_window_on_the_screen(qtbot, window: MainWindow,
                                                                              recording: Path, tmp_path: Path) -> None:
    """Fourth fresh tester of issue 12: the replay title held a partial recording's reason on one line, and the window
    grew 2772 px wide on a 1280 px screen (the plots, the events and the reason itself off-screen). The title wraps,
    and the file's texts are shown as text, not as markup."""
    import h5py

    copy = tmp_path / recording.name
    shutil.copy(recording, copy)
    reason = "The disk holding the recording is full (no space left, below the 50 MB reserve): recording stopped. " * 6
    with h5py.File(copy, "r+") as f:
        f.attrs["closed_cleanly"] = False
        f.attrs["close_note"] = reason
        f.attrs["operator_id"] = "<b>dr-x</b>"
    win = window
    win.resize(1280, 800)
    open_replay(qtbot, win, copy)
    qtbot.waitUntil(lambda: "partial" in win.replay.title.text(), timeout=TIMEOUT_MS)
    qtbot.wait(200)
    assert win.minimumSizeHint().width() <= 1280 and win.width() <= 1280, (win.minimumSizeHint(), win.width())
    assert "&lt;b&gt;dr-x&lt;/b&gt;" in win.replay.title.text()


def test_a_report_beside_a_recording_on_a_read_only_disk_is_refused_in_words(qtbot, window: MainWindow,
                                                                            recording: Path, tmp_path: Path) -> None:
    """Fourth fresh tester of issue 12: Write PDF report in replay, for a recording in a read-only folder, said
    "Something went wrong that the program did not expect". It says why, in the sentence the command line gives."""
    import subprocess

    disk = tmp_path / "ro"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("a tmpfs cannot be mounted here (needs root)")
    try:
        shutil.copy(recording, disk / recording.name)
        for side in (".sha256", ".sig"):
            if recording.with_name(recording.name + side).is_file():
                shutil.copy(recording.with_name(recording.name + side), disk / (recording.name + side))
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        win = window
        open_replay(qtbot, win, disk / recording.name)
        qtbot.waitUntil(lambda: win.replay.report_button.isEnabled(), timeout=TIMEOUT_MS)
        qtbot.mouseClick(win.replay.report_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: any("report could not be written" in m for _k, m in win.messages), timeout=TIMEOUT_MS)
        said = next(m for _k, m in win.messages if "report could not be written" in m)
        assert "read-only disk" in said and "Something went wrong" not in said, said
        assert said.count("could not be written") == 1, said
    finally:
        win.replay.close_recording()
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
