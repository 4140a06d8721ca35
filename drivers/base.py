"""The base of every serial device driver: declarations, bounds, commands, and the safety every device needs.

A subclass declares what it is (`INFO`, `BLOCK_DTYPE`, the wire layout `WIRE_HEADER`/`WIRE_SAMPLE`, `PARAMS`,
`FAULTS`, `active_channel`) and subclasses the interface of its kind (drivers/interfaces.py: `LightSource`,
`NeedlingPen`) with typed setters. Telemetry decodes from the channel declarations (one decoder, `decode_telemetry`).
Everything that touches safety lives here once: the bounds check before any byte is sent, light-off on every
(re)connect, heartbeats gated by the host's liveness, disconnection noticed within the reader's timeout. The port,
the threads and command/ACK matching are the device's `SerialLink` (drivers/link.py), with an injectable transport.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np

from drivers import protocol as p
from drivers.codes import DisconnectReason, LinkEvent
from drivers.errors import CommandRefused, CommandTimeout, DeviceError, NotConnected, WrongDevice
from drivers.events import Event, FanOut, Publisher, now_s
from drivers.frames import FrameIntake
from drivers.interfaces import Device
from drivers.link import (
    DEFAULT_BAUD,
    READ_TIMEOUT_S,
    TELEMETRY_LOST_S,
    Counters,
    SerialLink,
    Transport,
    TransportFactory,
    open_serial,
)
from drivers.plausibility import DeviceClock, Plausibility
from drivers.silence import SilenceWatch, lost_words
from drivers.types import BoundsError, DriverInfo, Identity

__all__ = ["DEFAULT_BAUD", "READ_TIMEOUT_S", "TELEMETRY_LOST_S", "CommandRefused", "CommandTimeout", "Counters",
           "DeviceError", "NotConnected", "SerialDevice", "Transport", "WrongDevice"]

log = logging.getLogger(__name__)


class SerialDevice(FrameIntake, Device):
    """One device on one serial port (a `SerialLink`). Thread-safe: commands may come from any thread."""

    INFO: ClassVar[DriverInfo]
    BLOCK_DTYPE: ClassVar[np.dtype]
    WIRE_HEADER: ClassVar[np.dtype]  # the TELEMETRY header layout (drivers.protocol)
    WIRE_SAMPLE: ClassVar[np.dtype]  # the layout of one sample in a TELEMETRY frame
    PARAMS: ClassVar[dict[str, int]]  # parameter name (as in INFO.bounds) -> wire id
    FAULTS: ClassVar[type]  # the IntFlag-like enum of fault bits
    DEFAULT_NAME: ClassVar[str]
    active_channel: ClassVar[str]  # the block field that is 1 while the device emits / needles
    ACTIVE_FIELD: ClassVar[str]  # the former name of `active_channel`, kept as an alias

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__
        if "active_channel" in declared or "ACTIVE_FIELD" not in declared:
            if hasattr(cls, "active_channel"):
                cls.ACTIVE_FIELD = cls.active_channel
        else:  # a driver written against the old name
            cls.active_channel = cls.ACTIVE_FIELD
        if all(hasattr(cls, a) for a in ("INFO", "BLOCK_DTYPE", "WIRE_HEADER", "WIRE_SAMPLE")):
            # built once per class: a declaration that does not match the block is an error when the driver loads
            cls._telemetry_decoder = staticmethod(
                p.telemetry_decoder(cls.WIRE_HEADER, cls.WIRE_SAMPLE, cls.BLOCK_DTYPE, cls.INFO.channels))

    def __init__(
        self,
        port: str,
        *,
        name: str | None = None,
        bus: Publisher | None = None,
        baudrate: int = DEFAULT_BAUD,
        heartbeat_period_s: float = 0.05,
        command_timeout_s: float = 1.0,
        liveness: Callable[[], bool] | None = None,
        auto_reconnect: bool = True,
        transport: TransportFactory = open_serial,
    ) -> None:
        self.name = name or self.DEFAULT_NAME
        self.bus = bus or FanOut()  # the publisher given (the application's SessionBus), else one of its own
        self.liveness = liveness or (lambda: True)
        self.counters = Counters()
        self.link = SerialLink(self, port, baudrate=baudrate, heartbeat_period_s=heartbeat_period_s,
                               command_timeout_s=command_timeout_s, auto_reconnect=auto_reconnect,
                               transport=transport)
        self.identity: Identity | None = None
        self.last_block: np.ndarray | None = None
        self.last_frame_s = 0.0
        self._samples_seen = SilenceWatch(0.0)
        self.telemetry_lost = False
        self._expected_seq: int | None = None
        self._seq_candidate: tuple[int, int] | None = None  # (last backward seq, consecutive run) of a restart
        self.unreadable_identity = ""  # why the last IDENTITY could not be read, in words
        self._device_clock = DeviceClock()
        self._plausibility = Plausibility(self.INFO.channels, self.active_channel)
        self._ready = False  # made safe and identified since the port was (re)opened: telemetry and heartbeats flow
        self._refusal = ""  # why the device on the port is not one this driver drives (then it stays closed)
        self.refused_identity: Identity | None = None  # what that device answered
        self._last_notice_s: dict[str, float] = {}
        self.last_rejection = ""  # why the last CRC-valid frame was rejected

    # --- the link's settings and state, as before the link was its own class ------------------------------------
    port = property(lambda self: self.link.port, doc="The port name (e.g. /dev/ttyUSB0).")
    baudrate = property(lambda self: self.link.baudrate)

    @property
    def auto_reconnect(self) -> bool:
        return self.link.auto_reconnect

    @auto_reconnect.setter
    def auto_reconnect(self, on: bool) -> None:
        self.link.auto_reconnect = on

    @property
    def command_timeout_s(self) -> float:
        return self.link.command_timeout_s

    @command_timeout_s.setter
    def command_timeout_s(self, value: float) -> None:
        self.link.command_timeout_s = value

    @property
    def heartbeat_period_s(self) -> float:
        return self.link.heartbeat_period_s

    @property
    def _serial(self) -> Transport | None:
        """The open transport (tests replace its `write` to make a write fail)."""
        return self.link.transport

    @property
    def _threads(self) -> list:
        """[reader, heartbeat] threads of the link."""
        return self.link.threads

    # --- life cycle --------------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.link.connected

    def connect(self) -> Identity:
        """Open the port, make sure the device is not emitting, identify it, start reading and heartbeats."""
        self._refusal = ""
        self.refused_identity = None
        self.link.start(f"{self.INFO.kind} device")
        try:
            self._make_safe()  # STOP and ARM 0 are the first frames on the wire; heartbeats come after them
            self.link.start_heartbeats()
            try:
                ident = self.identify()
            except CommandTimeout as exc:  # asked once more: a workstation held up for a moment is not a device
                log.info("%s: %s; asking once more", self.name, exc)  # that does not answer (eleventh session)
                ident = self.identify()
        except DeviceError:
            self.close()
            raise
        self._event("connection", "info", f"{self.name} connected: {ident.model} s/n {ident.serial_number}",
                    link=LinkEvent.CONNECTED.value)
        return ident

    def close(self) -> None:
        """Stop the device if possible, then stop the threads and release the port."""
        if self.link.running and self.connected:
            try:
                self.stop_now("closing")
            except DeviceError:
                pass
        self.link.stop()

    def __enter__(self) -> SerialDevice:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what the link asks of its device (drivers.link.LinkClient) ----------------------------------------------
    def link_opened(self) -> None:
        self._expected_seq = None
        self._seq_candidate = None
        self._ready = False
        self._device_clock.reset()
        self._plausibility.reset()
        self.last_frame_s = now_s()
        self._samples_seen = SilenceWatch(self.last_frame_s)  # the telemetry watchdog (drivers/silence.py)
        self.telemetry_lost = False

    def frame_arrived(self, frame: p.Frame, t_arrival: float) -> None:
        self._handle_contained(frame, t_arrival)

    def link_reopened(self) -> None:
        self._make_safe()
        self._send(p.Msg.IDENTIFY, b"", "identify", {}, wait=False)  # the reader checks it; then `_ready`

    def link_checked(self, t: float) -> None:
        """The telemetry watchdog on host time, run by the reader after it has read and handled everything waiting:
        lost after TELEMETRY_LOST_S without new samples while the reader was looking, or 4 × that on the wall clock
        (a stretch the reader itself was held up is not the device's silence: drivers/silence.py)."""
        watch = self._samples_seen
        blind_s = watch.looked(t)
        if blind_s:
            log.debug("%s: the reader was held up for %.0f ms (not counted as the device's silence)", self.name,
                     blind_s * 1000)
        if self.connected and not self.telemetry_lost and watch.lost(t, TELEMETRY_LOST_S):
            self.telemetry_lost = True
            words, details = lost_words(self.name, watch, t, TELEMETRY_LOST_S)
            self._event("connection", "high", words, link=LinkEvent.TELEMETRY_LOST.value, **details)

    def heartbeat_due(self) -> bool:
        """Heartbeats go out only while everything they vouch for holds: the port open, the device made safe and
        identified, the reader thread alive, telemetry fresh (new samples within 250 ms) and the host alive."""
        return (self.connected and self._ready and self.link.reader_alive()
                and now_s() - self.last_frame_s <= TELEMETRY_LOST_S and self.liveness())

    def _make_safe(self) -> None:
        """Light off / motor off, disarmed, whatever state the device was left in (the first frames after opening)."""
        self._send(p.Msg.STOP, b"", "stop", {"why": "connect"}, wait=False)
        self._send(p.Msg.ARM, p.ARM_PAYLOAD.pack(0), "arm", {"on": False, "why": "connect"}, wait=False)

    # --- commands ---------------------------------------------------------------------------------------------
    def identify(self) -> Identity:
        """Ask the device who it is and check it against `INFO`; raises WrongDevice naming the port and the answer."""
        self.identity = None
        try:
            self._send(p.Msg.IDENTIFY, b"", "identify", {})
        except DeviceError:
            # The answer can be read, refused and the port closed by the reader before pyserial's write returns.
            if self._refusal:
                raise WrongDevice(self._refusal, self.refused_identity) from None
            raise
        if self._refusal:
            raise WrongDevice(self._refusal, self.refused_identity)
        if self.identity is None:  # the reader parses it; a bad one was counted and logged there
            why = f" ({self.unreadable_identity})" if self.unreadable_identity else ""
            raise DeviceError(f"{self.name} on {self.port} sent an unreadable identity{why}.")
        return self.identity

    def _set(self, param: str, value: float) -> float:
        """Set a parameter after checking it against the declared bounds; nothing is sent if it is out of them.
        Internal: the typed setters of the interfaces (`set_target_dose`, `set_depth`, ...) are the public API."""
        bound = next((b for b in self.INFO.bounds if b.name == param), None)
        if bound is None or param not in self.PARAMS:
            raise BoundsError(f"{self.name} has no parameter {param!r}; it has {', '.join(self.PARAMS)}.")
        v = bound.check(value)
        self._send(p.Msg.SET, p.SET_PAYLOAD.pack(self.PARAMS[param], v), "set", {"param": param, "value": v})
        return v

    def arm(self, on: bool = True) -> None:
        self._send(p.Msg.ARM, p.ARM_PAYLOAD.pack(1 if on else 0), "arm", {"on": on})

    def start(self) -> None:
        self._send(p.Msg.START, b"", "start", {})

    def inhibit_starts(self, owner: str, why: str) -> None:
        self.link.inhibit_starts(owner, why)

    def allow_starts(self, owner: str) -> None:
        self.link.allow_starts(owner)

    def stop(self) -> None:
        """Stop emission or needling and wait for the acknowledgement."""
        self._send(p.Msg.STOP, b"", "stop", {})

    def stop_now(self, why: str) -> float:
        """Write STOP at once without waiting for the answer (interlocks). Returns the host time it was written.

        The answer is still recorded when it arrives. Raises NotConnected if nothing could be written.
        """
        self._send(p.Msg.STOP, b"", "stop", {"why": why}, wait=False)
        return now_s()

    def reset_faults(self) -> None:
        """Clear latched faults (the manual reset after a trip); refused while a cause persists."""
        self._send(p.Msg.RESET, b"", "reset", {})

    def heartbeat(self) -> None:
        self._send(p.Msg.HEARTBEAT, b"", "heartbeat", {}, wait=False, track=False)
        self.counters.heartbeats_sent += 1

    def _send(
        self, msg: int, payload: bytes, command: str, args: dict, *, wait: bool = True, track: bool = True
    ) -> p.Frame | None:
        return self.link.send(msg, payload, command, args, wait=wait, track=track)

    def _lost_connection(self, why: str, reason: DisconnectReason, *, forced: bool = False) -> None:
        self.link.lost(why, reason, forced=forced)

    @classmethod
    def decode_telemetry(cls, payload: bytes, seq: int, t_arrival: float) -> np.ndarray:
        """A TELEMETRY payload as a block of BLOCK_DTYPE (one row per sample), read by the channel declarations
        (drivers.protocol.telemetry_decoder); raises drivers.protocol.FrameError if it cannot be."""
        return cls._telemetry_decoder(payload, seq, t_arrival)

    # --- helpers -----------------------------------------------------------------------------------------------
    @classmethod
    def fault_names(cls, bits: int) -> list[str]:
        return [f.name for f in cls.FAULTS if bits & f.value]

    def _event(self, kind: str, severity: str, message: str, **details: object) -> None:
        self._event_at(now_s(), kind, severity, message, **details)

    def _event_at(self, t_host_s: float, kind: str, severity: str, message: str, **details: object) -> None:
        """An event stamped `t_host_s` (a device report is stamped with its frame's arrival, like a block)."""
        self.bus.publish_event(Event(t_host_s, kind, severity, self.name, message, dict(details)))

    def status(self) -> dict:
        """A snapshot for status displays: connection, identity and counters."""
        return {
            "name": self.name,
            "port": self.port,
            "connected": self.connected,
            "telemetry_lost": self.telemetry_lost,
            "last_rejection": self.last_rejection,
            "stopped_because": self.link.dead,
            "identity": self.identity.as_dict() if self.identity else None,
            **asdict(self.counters),
        }
