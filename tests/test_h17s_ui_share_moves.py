"""Issue 17's fresh tester, item 4: the window's share line re-reads the clinic's share the store records at each
copy pass (and every IDLE_POLL_S while idle, on the copier's thread): after another process moves the share with
`store set-recordings-root --clinic-share`, the window names the new share, says its own settings still name the
old one, and copies the next recording there, never to the old folder. pytest-qt offscreen; a real store on both
engines, real recordings, the move made by a real second process."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

from helpers_recording import write_session
from test_h17s_share_place import _given, linked  # noqa: F401 - the fixture: a store with one linked recording

from workstation.checksum import sha256_of
from workstation.recording import share as share_module
from workstation.recording.share import recording_saved
from workstation.recording.summary import check_checksum
from workstation.session.visit import Places
from workstation.store import ClinicStore
from workstation.ui.main_window import MainWindow

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 20_000


def test_the_share_line_follows_a_share_moved_by_another_process(qtbot, tmp_path, monkeypatch, linked):  # noqa: F811
    store_url, root, _local, sid = linked
    monkeypatch.setattr(share_module, "IDLE_POLL_S", 0.3)  # the idle re-read, shortened; no wake() is used for it
    old, new = tmp_path / "nas1" / "recordings", tmp_path / "nas2" / "recordings"
    old.mkdir(parents=True)
    new.parent.mkdir()
    win = MainWindow(recordings_dir=root, places=Places(clinic_store=store_url, clinic_recordings=old))
    qtbot.addWidget(win)
    win.show()
    try:
        line = win.share_status
        qtbot.waitUntil(lambda: line.status is not None and line.status.copied == 1, timeout=TIMEOUT_MS)
        assert not line.isVisible() and line.status.share == old
        old.rename(new)  # the clinic moved the share's files, then, from another workstation:
        moved = subprocess.run([sys.executable, str(REPO / "main.py"), "store", "set-recordings-root",
                                "--clinic-share", str(new), "--store", _given(store_url)],
                               capture_output=True, text=True, timeout=120, cwd=REPO)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        old.mkdir()  # the old folder is there again, empty: nothing may be copied to it
        qtbot.waitUntil(lambda: line.isVisible() and line.status.share == new, timeout=TIMEOUT_MS)
        assert f"The clinic's recordings share is now {new} (recorded in the store); copies go there." in line.text()
        assert f"This workstation's settings still name {old}" in line.text()
        assert win.isEnabled() and win.pages.currentWidget() is win.start_page  # nothing modal
        with ClinicStore.open(store_url, training=False) as store:  # the next session's recording
            nxt = write_session(root, 0.3, mode="clinical")
            sid2 = store.add_session(store.course_of_session(sid), date(2026, 1, 19))
            store.link_recording(sid2, nxt, sha256_of(nxt))
            recording_saved(store, sid2)
        qtbot.waitUntil(lambda: line.status.copied == 2 and line.status.pending == 0, timeout=TIMEOUT_MS)
    finally:
        win.close()
    with ClinicStore.open(store_url, training=False) as store:
        copy = store.shared_path(sid2)
        assert copy == new / nxt.parent.name / nxt.name and check_checksum(copy).intact
        assert store.shared_path(sid).is_relative_to(new)
    assert list(old.rglob("*")) == []
