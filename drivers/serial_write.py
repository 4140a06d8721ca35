"""Writing a frame to a serial port with a timeout that load cannot fake.

pyserial's `Serial.write` with a `write_timeout` raises "Write timeout" when the call as a whole took longer than the
timeout, even after every byte was written: a thread that waited for the GIL on a loaded machine (a 2-core box with
a session, the emulators and other work) reported a healthy device as gone, and the driver tripped `disconnected`.
Here the port is opened non-blocking (`write_timeout=0`) and the timeout is the kernel's: the write fails only when
`select` saw the port take no byte for `timeout_s`, i.e. when the device really stopped reading.
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable

import serial

WRITE_TIMEOUT_S = 0.5  # the device took no byte for this long: the link is gone (the driver reports a disconnect)
NON_BLOCKING = os.name == "posix"  # elsewhere pyserial's own timeout is used as it is

__all__ = ["NON_BLOCKING", "WRITE_TIMEOUT_S", "open_write_timeout", "write_frame"]


def open_write_timeout() -> float:
    """The `write_timeout` to open a port with for `write_frame`: 0 (non-blocking) where select works on ports."""
    return 0 if NON_BLOCKING else WRITE_TIMEOUT_S


def write_frame(ser: serial.Serial, data: bytes, timeout_s: float = WRITE_TIMEOUT_S, *,
                write: Callable[[bytes], int | None] | None = None) -> None:
    """Write all of `data` to `ser` (opened with `open_write_timeout()`), through `write` (default `ser.write`).
    Raises serial.SerialTimeoutException when the port accepted no byte for `timeout_s` as measured by select,
    serial.SerialException / OSError as pyserial does otherwise."""
    write = write or ser.write
    if not NON_BLOCKING:
        write(data)
        return
    view = memoryview(data)
    while len(view):
        _, ready, _ = select.select([], [ser.fileno()], [], timeout_s)
        if not ready:
            raise serial.SerialTimeoutException(f"Write timeout: the port took no byte for {timeout_s:g} s")
        n = write(bytes(view))  # non-blocking: what the port took now (at least a byte once select said so)
        view = view[n or 0:]


class SelectWritePort(serial.Serial):
    """A pyserial port whose `write` is `write_frame`'s: it fails only when the port took no byte for
    WRITE_TIMEOUT_S (select), never because this thread waited for the CPU. Open it with
    `write_timeout=open_write_timeout()` (what `drivers.link.open_serial` does)."""

    def write(self, data: bytes) -> int:  # type: ignore[override]
        write_frame(self, bytes(data), write=lambda chunk: serial.Serial.write(self, chunk))  # pyserial's own write
        return len(data)
