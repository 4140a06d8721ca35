"""The window shows, without a dialog, the recordings still waiting for the clinic's share and why; the copies run on
their own thread and resume at start (pytest-qt, offscreen; a real store, real recordings, real folders)."""

from __future__ import annotations

from pathlib import Path

from test_recording_share import clinic  # noqa: F401 - the fixture: a clinic store with one linked recording

from workstation.recording.summary import check_checksum
from workstation.session.visit import Places
from workstation.store import ClinicStore
from workstation.ui.main_window import MainWindow

TIMEOUT_MS = 10_000


def test_the_window_shows_waiting_copies_and_clears_the_line_once_copied(qtbot, tmp_path, clinic):  # noqa: F811
    db, local, _sha, sid = clinic
    share = tmp_path / "mnt" / "clinic-recordings"  # not mounted yet
    win = MainWindow(recordings_dir=tmp_path / "recordings", places=Places(clinic_store=db, clinic_recordings=share))
    qtbot.addWidget(win)
    win.show()
    try:
        line = win.share_status
        qtbot.waitUntil(lambda: line.isVisible(), timeout=TIMEOUT_MS)
        assert line.text().startswith(f"1 recording waiting to copy to {share}: the share {share} is not reachable")
        assert "retrying in 5 s" in line.text() and "safe on this workstation" in line.text()
        assert win.pages.currentWidget() is win.start_page and win.isEnabled()  # nothing modal, nothing blocked
        share.mkdir(parents=True)
        line.copier.wake()  # what a saved recording does (recording_saved); otherwise the retry in 5 s
        qtbot.waitUntil(lambda: not line.isVisible(), timeout=TIMEOUT_MS)
        assert line.status.pending == 0 and line.status.copied == 1
    finally:
        win.close()
    with ClinicStore.open(db, training=False) as store:
        copy = store.shared_path(sid)
    assert copy == share / local.parent.name / local.name and check_checksum(Path(copy)).intact
