"""drivers.serial_write: a frame write fails only when the device really stopped taking bytes (judged by the
kernel's select, not by how long the calling thread took), on a real pty."""

from __future__ import annotations

import os
import threading
import time

import pytest
import serial

from drivers.serial_write import NON_BLOCKING, open_write_timeout, write_frame

pytestmark = pytest.mark.skipif(not NON_BLOCKING, reason="select on serial ports is POSIX only")


@pytest.fixture()
def pty_port():
    master, slave = os.openpty()
    ser = serial.Serial(os.ttyname(slave), timeout=0.02, write_timeout=open_write_timeout())
    yield master, ser
    ser.close()
    os.close(slave)
    os.close(master)


def test_a_device_that_stops_reading_times_the_write_out(pty_port):
    master, ser = pty_port
    frame = bytes(range(256)) * 4
    with pytest.raises(serial.SerialTimeoutException, match="took no byte for 0.2 s"):
        for _ in range(10_000):  # a pty holds a few kB unread: the port fills, then takes nothing
            write_frame(ser, frame, timeout_s=0.2)


def test_a_slow_caller_is_not_a_dead_device(pty_port, monkeypatch):
    """pyserial's own timed write raised "Write timeout" after writing everything when its thread was late (a loaded
    machine); here a call that takes longer than the timeout, while the device reads, writes every byte."""
    master, ser = pty_port
    got = bytearray()
    done = threading.Event()

    def device() -> None:
        while not done.is_set() or len(got) < 64_000:
            got.extend(os.read(master, 65536))

    reader = threading.Thread(target=device, daemon=True)
    reader.start()
    real_write = ser.write

    def late_write(data: bytes) -> int:  # the calling thread is descheduled for longer than the timeout
        time.sleep(0.3)
        return real_write(data)

    monkeypatch.setattr(ser, "write", late_write)
    data = bytes(range(250)) * 256  # 64 000 bytes: several kernel-buffer fills
    write_frame(ser, data, timeout_s=0.2)
    done.set()
    reader.join(10)
    assert bytes(got[:len(data)]) == data
