"""The serial link is its own class with an injectable transport: a driver runs unchanged over a transport that is not
pyserial (here raw file descriptors on the emulator's real pty), and the link's losses carry their codes."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import termios
import tty

import pytest

from drivers.codes import DisconnectReason, LinkEvent
from drivers.errors import NotConnected
from drivers.events import FanOut
from drivers.light import UVB308Light
from drivers.link import READ_TIMEOUT_S, SerialLink
from drivers.pen import MicroneedlingPen
from drivers.testing import Tap, link_events, wait_for
from tests.conftest import make_emulator


class FdTransport:
    """The `drivers.link.Transport` methods on a raw, non-blocking file descriptor (no pyserial)."""

    opened: list[FdTransport] = []

    def __init__(self, port: str, baudrate: int) -> None:
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.bytes_written = 0
        self.fail_writes = False
        FdTransport.opened.append(self)

    @property
    def in_waiting(self) -> int:
        return struct.unpack("i", fcntl.ioctl(self.fd, termios.FIONREAD, b"\0" * 4))[0]

    def read(self, size: int = 1) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], READ_TIMEOUT_S)
        if not ready:
            return b""
        try:
            data = os.read(self.fd, size)
        except BlockingIOError:
            return b""
        if not data:
            raise OSError("the device side of the pty is gone")
        return data

    def write(self, data: bytes) -> int:
        if self.fail_writes:
            raise OSError(5, "Input/output error")
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [self.fd], [], 0.5)
            if not ready:
                raise OSError("write timeout")
            n = os.write(self.fd, view)
            view = view[n:]
        self.bytes_written += len(data)
        return len(data)

    def reset_input_buffer(self) -> None:
        termios.tcflush(self.fd, termios.TCIFLUSH)

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def tap_bus():
    bus, tap = FanOut(), Tap()
    bus.subscribe(tap)
    return bus, tap


@pytest.mark.parametrize("kind", ["light", "pen"])
def test_a_driver_runs_over_an_injected_transport(kind, tap_bus):
    bus, tap = tap_bus
    FdTransport.opened.clear()
    emu = make_emulator(kind, seed=11).start()
    cls = UVB308Light if kind == "light" else MicroneedlingPen
    drv = cls(emu.port, bus=bus, transport=FdTransport)
    try:
        drv.connect()
        assert len(FdTransport.opened) == 1 and drv._serial is FdTransport.opened[0]
        assert drv.identity.extra["kind"] == drv.kind and isinstance(drv.link, SerialLink)
        wait_for(lambda: drv.counters.samples > 200, what="telemetry over the fd transport")
        if kind == "light":
            drv.set_target_dose(4000)
        else:
            drv.set_depth(0.5)
        drv.arm()
        drv.start()
        wait_for(lambda: emu.state().active, what="device active")
        wait_for(lambda: tap.blocks[drv.name][-1][drv.active_channel][-1] == 1, what="active in telemetry")
        drv.stop_now("test")
        wait_for(lambda: not emu.state().active, what="device stopped")
        assert FdTransport.opened[0].bytes_written > 0 and drv.counters.heartbeats_sent > 0
        assert [c.command for c in tap.commands[:2]] == ["stop", "arm"]  # made safe first, whatever the transport
    finally:
        drv.close()
        emu.stop()
    assert not drv.connected and not drv.link.threads


def test_a_failed_write_is_a_coded_disconnect_and_the_reconnect_opens_a_new_transport(tap_bus):
    bus, tap = tap_bus
    FdTransport.opened.clear()
    emu = make_emulator("light", seed=12).start()
    drv = UVB308Light(emu.port, bus=bus, transport=FdTransport)
    try:
        drv.connect()
        FdTransport.opened[0].fail_writes = True
        with pytest.raises(NotConnected, match="could not be written"):
            drv.arm()
        lost = link_events(tap, LinkEvent.DISCONNECTED, drv.name)
        assert lost and lost[0].details["disconnect"] == DisconnectReason.WRITE_FAILED
        assert lost[0].severity == "high" and "disconnected (write failed" in lost[0].message
        wait_for(lambda: drv.connected and link_events(tap, LinkEvent.RECONNECTED), what="reconnected")
        assert len(FdTransport.opened) == 2  # the factory was asked again; the failing transport is gone
        wait_for(lambda: drv._ready, what="identified again")
        drv.arm()  # commands work over the new transport
        assert emu.state().armed
    finally:
        drv.close()
        emu.stop()


def test_a_transport_that_cannot_open_is_not_connected_in_words():
    def no_port(port: str, baudrate: int):
        raise OSError(2, "No such file or directory")

    drv = UVB308Light("/dev/ttyNOPE", transport=no_port)
    with pytest.raises(NotConnected, match="cannot open the light device on /dev/ttyNOPE.*Check the cable"):
        drv.connect()
    assert not drv.connected and not drv.link.threads
