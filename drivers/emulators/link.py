"""The emulator's end of the cable: a pty pair behind a stable symlink, with a paced, lossy transmitter.

A real device has a small transmit FIFO and a UART that drains it at baud/10 bytes per second. `PtyLink` models
exactly that: frames are queued, a writer thread drains the queue (paced when `baud` is set), and when the queue is
full because the line is too slow or the host is not reading, telemetry frames are dropped and counted (their
sequence numbers are spent, so the host sees the gap). Control frames (ACK, REFUSE, STATUS, FAULT) are never dropped
for lack of room. The pty master is non-blocking, so a host that stops reading never blocks the device.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import shutil
import tempfile
import threading
import time
import tty
from dataclasses import dataclass

import numpy as np

from drivers.protocol import encode_frame

log = logging.getLogger(__name__)

CONTROL_QUEUE_LIMIT_BYTES = 1 << 20  # a host that never reads must not grow the queue without bound


@dataclass(frozen=True, slots=True)
class LinkStats:
    """Counters of the device's side of the cable, since the emulator started."""

    frames_sent: int  # frames queued for the wire (after the sequence number was assigned)
    frames_dropped: int  # frames lost because the transmit queue was full or the cable unplugged
    frames_dropped_unread: int  # of those, lost while the host's side was full (the host not reading, not the line)
    bytes_written: int  # bytes the host side could read
    bytes_dropped: int
    bytes_corrupted: int  # bytes flipped or inserted by the corruption fault
    plugged: bool
    baud: int | None


class PtyLink:
    """A pty pair whose slave is reachable at `port`, a symlink that survives unplug/replug."""

    def __init__(
        self,
        name: str,
        *,
        port: str | None = None,
        baud: int | None = None,
        tx_buffer_bytes: int = 4096,
        seed: int | None = 0,
    ) -> None:
        if baud is not None and baud <= 0:
            raise ValueError(f"baud must be positive, not {baud}")
        self._own_dir: str | None = None
        if port is None:
            self._own_dir = tempfile.mkdtemp(prefix="cicatrix-emu-")
            port = os.path.join(self._own_dir, f"tty-{name}")
        elif os.path.lexists(port) and not os.path.islink(port):
            raise ValueError(f"{port} exists and is not a symlink; choose a new path for the emulator's port")
        self.port = port
        self.baud = baud
        self.tx_buffer_bytes = tx_buffer_bytes
        self._lock = threading.Lock()  # guards the fds, the queue, the sequence counter and the counters
        self._wakeup = threading.Condition(self._lock)
        self._master: int | None = None
        self._slave: int | None = None
        self.pty_path: str | None = None
        self._queue = bytearray()
        self._seq = 0
        self._rng = np.random.default_rng(seed)
        self._corrupt_rate = 0.0
        self._frames_sent = self._frames_dropped = self._frames_dropped_unread = 0
        self._host_full = False  # the last write found the host's side full
        self._tx_ran_at = time.monotonic()  # the transmitter's last turn
        self._bytes_written = self._bytes_dropped = self._bytes_corrupted = 0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._running = False
        self._writer: threading.Thread | None = None
        self.writer_errors = 0

    # --- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.plug()
        self._running = True
        self._writer = threading.Thread(target=self._write_loop, name=f"emu-tx:{self.port}", daemon=True)
        self._writer.start()

    def shutdown(self) -> None:
        with self._lock:
            self._running = False
            self._wakeup.notify_all()
        if self._writer is not None:
            self._writer.join(timeout=2.0)
        self.unplug()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)

    def plug(self) -> None:
        """Open a fresh pty pair and point the stable symlink at its slave."""
        master, slave = os.openpty()
        tty.setraw(slave)  # else the line discipline echoes and translates bytes
        os.set_blocking(master, False)
        pty_path = os.ttyname(slave)
        tmp_link = f"{self.port}.{os.getpid()}.tmp"
        if os.path.lexists(tmp_link):
            os.unlink(tmp_link)
        os.symlink(pty_path, tmp_link)
        os.replace(tmp_link, self.port)  # atomic: the path never points nowhere while plugged
        with self._lock:
            old = (self._master, self._slave)
            self._master, self._slave, self.pty_path = master, slave, pty_path
            self._queue.clear()
        for fd in old:
            if fd is not None:
                os.close(fd)

    def unplug(self) -> None:
        """Close the pty (the host's reads and writes fail) and remove the symlink, like a pulled USB cable."""
        with self._lock:
            fds = (self._master, self._slave)
            self._master = self._slave = None
            self._bytes_dropped += len(self._queue)
            self._queue.clear()
        try:
            if os.path.islink(self.port):
                os.unlink(self.port)
        except OSError as exc:
            log.warning("could not remove %s: %s", self.port, exc)
        for fd in fds:
            if fd is not None:
                os.close(fd)
        try:
            os.write(self._wake_w, b"\x01")  # wake a reader blocked in select on the closed master
        except OSError:
            pass

    @property
    def plugged(self) -> bool:
        return self._master is not None

    # --- receive ------------------------------------------------------------------------------------------------
    def read(self, timeout_s: float) -> bytes:
        """Bytes the host wrote, or b"" after timeout_s (or while unplugged)."""
        master = self._master
        if master is None:
            time.sleep(timeout_s)
            return b""
        try:
            ready, _, _ = select.select([master, self._wake_r], [], [], timeout_s)
        except (OSError, ValueError):  # the master was closed by unplug() meanwhile
            return b""
        if self._wake_r in ready:
            try:
                os.read(self._wake_r, 64)
            except BlockingIOError:
                pass
        if master not in ready:
            return b""
        with self._lock:
            if self._master != master:  # unplugged (and maybe replugged) since select: the fd is not ours
                return b""
            try:
                return os.read(master, 65536)
            except (BlockingIOError, InterruptedError):
                return b""
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return b""
                raise

    # --- transmit -----------------------------------------------------------------------------------------------
    @property
    def corrupt_rate(self) -> float:
        return self._corrupt_rate

    def set_corrupt_rate(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"corrupt rate is a fraction of bytes in 0..1, not {rate}")
        with self._lock:
            self._corrupt_rate = rate

    def send(self, msg_type: int, payload: bytes, *, droppable: bool = False, late_s: float = 0.0) -> int:
        """Frame and queue one message; returns the sequence number it was given.

        `droppable` (telemetry): dropped when the transmit buffer (`tx_buffer_bytes`) is full, as a device drops
        samples the line cannot carry. A real UART is never held up; this transmitter and the model are threads of a
        process that can be. So the buffer also holds what the line would have carried meanwhile: `late_s` (how long
        ago the device made this frame, when the model catches up) or the time since the transmitter last ran,
        whichever is longer (an unlimited line: all of it). Frames dropped while the host's side was full (the host
        not reading) are counted apart (`frames_dropped_unread`)."""
        with self._lock:
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFFFF
            frame = encode_frame(msg_type, seq, payload)
            if self._corrupt_rate > 0.0:
                frame = self._corrupt(frame)
            self._frames_sent += 1
            limit = self.tx_buffer_bytes if droppable else CONTROL_QUEUE_LIMIT_BYTES
            held_s = max(late_s, time.monotonic() - self._tx_ran_at - 0.002)  # beyond one 2 ms chunk of line time
            if droppable and held_s > 0.0 and not self._host_full:
                limit = limit + int(held_s * self.baud / 10.0) if self.baud else len(self._queue) + len(frame)
            if self._master is None or len(self._queue) + len(frame) > limit:
                self._frames_dropped += 1
                self._frames_dropped_unread += self._host_full
                self._bytes_dropped += len(frame)
                return seq
            self._queue += frame
            self._wakeup.notify()
            return seq

    def _corrupt(self, frame: bytes) -> bytes:
        n_bad = int(self._rng.binomial(len(frame), self._corrupt_rate))
        if n_bad == 0:
            return frame
        out = bytearray(frame)
        for pos in sorted(self._rng.integers(0, len(frame), n_bad).tolist(), reverse=True):
            if self._rng.random() < 0.5:
                out[pos] ^= int(self._rng.integers(1, 256))  # flip some bits
            else:
                out.insert(pos, int(self._rng.integers(0, 256)))  # a stray byte
        self._bytes_corrupted += n_bad
        return bytes(out)

    def _write_loop(self) -> None:
        bytes_per_s = self.baud / 10.0 if self.baud else 0.0
        # The line drains continuously; the model hands it over in chunks of up to 2 ms of line time (a UART FIFO's
        # worth; a USB adapter batches more), so the loop wakes about 500 times a second, not once per byte: waking
        # per byte starved the other threads of a loaded machine (a host write once waited 0.5 s for the reader).
        burst_bytes = max(16.0, bytes_per_s * 0.002)
        credit, last = 0.0, time.monotonic()
        while True:
            try:
                with self._lock:
                    while self._running and not self._queue:
                        self._wakeup.wait(0.1)
                    if not self._running:
                        return
                    now = time.monotonic()
                    credit, n, want = line_turn(credit, now - last, len(self._queue), bytes_per_s, burst_bytes)
                    last = self._tx_ran_at = now
                    written = self._write_locked(n) if n else 0
                    credit -= written
                if n == 0:
                    time.sleep(max(0.0002, (want - credit) / bytes_per_s))
                elif written < n:
                    time.sleep(0.001)  # the host is not reading: its pty buffer is full
            except Exception:  # noqa: BLE001 - the transmitter must outlive any one bad write
                self.writer_errors += 1
                log.exception("emulator transmitter error on %s", self.port)
                time.sleep(0.01)

    def _write_locked(self, n: int) -> int:
        if self._master is None:
            return 0
        try:
            written = os.write(self._master, self._queue[:n])
        except (BlockingIOError, InterruptedError):
            self._host_full = True
            return 0
        except OSError as exc:
            if exc.errno == errno.EIO:
                return 0
            raise
        self._host_full = written < n
        del self._queue[:written]
        self._bytes_written += written
        return written

    def stats(self) -> LinkStats:
        with self._lock:
            return LinkStats(
                frames_sent=self._frames_sent,
                frames_dropped=self._frames_dropped,
                frames_dropped_unread=self._frames_dropped_unread,
                bytes_written=self._bytes_written,
                bytes_dropped=self._bytes_dropped,
                bytes_corrupted=self._bytes_corrupted,
                plugged=self._master is not None,
                baud=self.baud,
            )


def line_turn(credit: float, elapsed_s: float, queued: int, bytes_per_s: float, burst_bytes: float) -> tuple[float, int, int]:
    """One turn of the transmitter: `(credit, n, want)`, bytes of line time in hand, bytes to hand over now and the
    chunk it waits for when `n` is 0.

    A real UART drains its queue for as long as the queue holds bytes, whether or not anything in the host ran. Here
    the transmitter is a thread, and a loaded machine can hold it back for tens of milliseconds: the line time that
    passed meanwhile is owed to the queue, so a late turn hands over everything the line would have carried (the
    credit grows with the elapsed time up to what is queued), not one chunk; only an idle line banks no more than
    two chunks. `bytes_per_s` 0 is an unlimited line: everything queued goes at once."""
    if not bytes_per_s:
        return credit, queued, queued
    credit = min(max(2.0 * burst_bytes, float(queued)), credit + elapsed_s * bytes_per_s)
    want = min(queued, int(burst_bytes))  # a chunk, or what is left
    n = min(queued, int(credit)) if credit >= want else 0
    return credit, n, want
