"""The recording's fsync runs on a thread of its own (workstation/recording/syncer.py): a disk slow to sync never holds
the appends, whose cadence bounds what a killed process loses (the twelfth issue's ninth case: appends 357 ms apart;
its fourteenth session measured 696 ms with the fsync inline on a disk kept busy by `stress-ng --hdd`, 228 ms with
it apart: docs/benchmarks.md). An fsync that fails stops the recorder as any write failure does. Real recorders on
real files; only the fsync is held or failed, by replacing the syncer's own call."""

from __future__ import annotations

import errno
import threading
import time

from helpers_recording import add_devices, frames, meta

from workstation.recording import Recording, SessionRecorder, syncer


def _publish_until(rec: SessionRecorder, done) -> None:
    deadline = time.monotonic() + 60
    k = 0
    while not done() and time.monotonic() < deadline:
        for dev in ("light", "pen"):
            rec.on_block(dev, frames(dev, k, 1)[0])
        k += 1
        time.sleep(0.01)


def test_a_disk_that_does_not_sync_never_holds_the_appends(tmp_path, monkeypatch):
    real = syncer.fsync
    held, release = threading.Event(), threading.Event()

    def stuck(fd, stats):  # a disk that takes as long as the test wants to sync
        held.set()
        release.wait(60)
        real(fd, stats)

    monkeypatch.setattr(syncer, "fsync", stuck)
    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0, t0_host_s=1000.0)
    add_devices(rec)
    rec.start()
    try:
        _publish_until(rec, lambda: rec.stats.flushes >= 6)
        assert held.is_set() and rec.stats.fsyncs == 0  # the first fsync is still under way
        assert rec.stats.flushes >= 6  # and the appends went on meanwhile
        with Recording.open(rec.path) as live:  # a live reader sees them
            assert live.samples("light") > 0
    finally:
        release.set()
    rec.close()
    assert rec.error is None and rec.stats.fsyncs >= 2  # the one that was held, and the last before the close
    with Recording.open(rec.path) as r:
        assert r.samples("light") == rec.stats.rows_written["light"]


def test_an_fsync_that_fails_stops_the_recorder_in_words_and_leaves_the_file_readable(tmp_path, monkeypatch):
    def failing(fd, stats):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(syncer, "fsync", failing)
    errors = []
    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0, t0_host_s=1000.0, on_error=errors.append)
    add_devices(rec)
    rec.start()
    _publish_until(rec, lambda: bool(errors))
    rec.close()
    assert errors and "recording stopped" in str(errors[0]) and "Errno" not in str(errors[0]), errors
    with Recording.open(rec.path) as r:
        assert r.samples("light") > 0
