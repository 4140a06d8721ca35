"""The base of every serial device driver: port, reader thread, heartbeats, commands, bounds, reconnection.

A subclass declares what it is (`INFO`, `BLOCK_DTYPE`, `PARAMS`) and how telemetry decodes (`_decode_telemetry`);
everything that touches safety lives here once: the bounds check before any byte is sent, light-off on every
(re)connect, heartbeats gated by the host's liveness, disconnection noticed within the reader's timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import serial

from drivers import protocol as p
from drivers.errors import CommandRefused, CommandTimeout, DeviceError, NotConnected, WrongDevice
from drivers.events import CommandRecord, Event, FanOut, Publisher, now_s
from drivers.frames import TELEMETRY_LOST_S, FrameIntake
from drivers.plausibility import DeviceClock, Plausibility
from drivers.serial_write import open_write_timeout, write_frame
from drivers.types import BoundsError, DriverInfo, Identity

__all__ = ["TELEMETRY_LOST_S", "CommandRefused", "CommandTimeout", "DeviceError", "NotConnected", "SerialDevice",
           "WrongDevice"]

log = logging.getLogger(__name__)

DEFAULT_BAUD = 921600
READ_TIMEOUT_S = 0.02  # a blocking read wakes at least this often: bounds disconnect/stall detection latency


@dataclass
class Counters:
    frames: int = 0  # valid frames decoded
    bad_frames: int = 0  # CRC / COBS / length errors, and CRC-valid frames rejected (`rejected_frames`)
    rejected_frames: int = 0  # CRC-valid frames that made no sense (payload, device clock, sequence, identity)
    implausible_samples: int = 0  # samples dropped for a value outside its channel's declaration
    resyncs: int = 0
    seq_gaps: int = 0  # times the device's sequence skipped
    lost_frames: int = 0  # frames missing, summed over the gaps
    seq_repeats: int = 0  # frames whose sequence number repeated or went back (telemetry among them is dropped)
    samples: int = 0
    bytes_in: int = 0
    disconnects: int = 0
    reconnects: int = 0
    heartbeats_sent: int = 0


@dataclass
class _Pending:
    seq: int
    command: str
    args: dict
    t_sent_s: float
    done: threading.Event
    reply: p.Frame | None = None
    publish: bool = True
    failure: str = ""  # the answer came but could not be read (in words)


class SerialDevice(FrameIntake):
    """One device on one serial port. Thread-safe: commands may come from any thread."""

    INFO: ClassVar[DriverInfo]
    BLOCK_DTYPE: ClassVar[np.dtype]
    PARAMS: ClassVar[dict[str, int]]  # parameter name (as in INFO.bounds) -> wire id
    FAULTS: ClassVar[type]  # the IntFlag-like enum of fault bits
    DEFAULT_NAME: ClassVar[str]
    ACTIVE_FIELD: ClassVar[str]  # the block field that is 1 while the device emits / needles

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
    ) -> None:
        self.port = port
        self.name = name or self.DEFAULT_NAME
        self.bus = bus or FanOut()  # the publisher given (the application's SessionBus), else one of its own
        self.baudrate = baudrate
        self.heartbeat_period_s = heartbeat_period_s
        self.command_timeout_s = command_timeout_s
        self.liveness = liveness or (lambda: True)
        self.auto_reconnect = auto_reconnect
        self.counters = Counters()
        self.identity: Identity | None = None
        self.last_block: np.ndarray | None = None
        self.last_frame_s = 0.0
        self.telemetry_lost = False
        self._serial: serial.Serial | None = None
        self._write_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._seq = 0
        self._expected_seq: int | None = None
        self._seq_candidate: tuple[int, int] | None = None  # (last backward seq, consecutive run) of a restart
        self.unreadable_identity = ""  # why the last IDENTITY could not be read, in words
        self._decoder = p.FrameDecoder()
        self._running = threading.Event()
        self._connected = threading.Event()
        self._threads: list[threading.Thread] = []
        self._device_clock = DeviceClock()
        self._plausibility = Plausibility(self.INFO.channels, self.ACTIVE_FIELD)
        self._ready = False  # made safe and identified since the port was (re)opened: telemetry and heartbeats flow
        self._refusal = ""  # why the device on the port is not one this driver drives (then it stays closed)
        self.refused_identity: Identity | None = None  # what that device answered
        self._dead = ""  # why a driver thread ended (then the driver stays disconnected until close and connect)
        self._last_notice_s: dict[str, float] = {}
        self.last_rejection = ""  # why the last CRC-valid frame was rejected

    # --- life cycle --------------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def connect(self) -> Identity:
        """Open the port, make sure the device is not emitting, identify it, start reading and heartbeats."""
        if self._running.is_set():
            raise DeviceError(f"{self.name} is already connected")
        self._refusal = self._dead = ""
        self.refused_identity = None
        self._open_port()
        self._running.set()
        self._threads = [threading.Thread(target=self._reader_loop, name=f"{self.name}-reader", daemon=True)]
        self._threads[0].start()
        try:
            self._make_safe()  # STOP and ARM 0 are the first frames on the wire; heartbeats come after them
            heartbeat = threading.Thread(target=self._heartbeat_loop, name=f"{self.name}-heartbeat", daemon=True)
            self._threads.append(heartbeat)
            heartbeat.start()
            ident = self.identify()
        except DeviceError:
            self.close()
            raise
        self._event("connection", "info", f"{self.name} connected: {ident.model} s/n {ident.serial_number}")
        return ident

    def close(self) -> None:
        """Stop the device if possible, then stop the threads and release the port."""
        if self._running.is_set() and self.connected:
            try:
                self.stop_now("closing")
            except DeviceError:
                pass
        self._running.clear()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2)
        self._threads = []
        self._close_port()

    def __enter__(self) -> SerialDevice:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_port(self) -> None:
        try:
            ser = serial.Serial(self.port, self.baudrate, timeout=READ_TIMEOUT_S, write_timeout=open_write_timeout())
        except (serial.SerialException, OSError, ValueError) as exc:
            raise NotConnected(
                f"cannot open the {self.INFO.kind} device on {self.port}: {exc}. "
                "Check the cable and the port name (`python main.py drivers` lists the drivers)."
            ) from exc
        ser.reset_input_buffer()
        self._serial = ser
        self._decoder = p.FrameDecoder()
        self._expected_seq = None
        self._seq_candidate = None
        self._ready = False
        self._device_clock.reset()
        self._plausibility.reset()
        self.last_frame_s = now_s()
        self.telemetry_lost = False
        self._connected.set()

    def _close_port(self) -> None:
        self._connected.clear()
        ser, self._serial = self._serial, None
        if ser is not None:
            try:
                ser.close()
            except (serial.SerialException, OSError):
                pass

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

    def set(self, param: str, value: float) -> float:
        """Set a parameter after checking it against the declared bounds; nothing is sent if it is out of them."""
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
        # Nothing is published while the write lock is held: the bus runs the safety monitor, which may write a STOP
        # to this very device (a failed write reports a disconnect, the disconnect trips an interlock).
        failure: Exception | None = None
        with self._write_lock:
            # The port is read under the lock: another thread's failed write may have closed it while this one
            # waited for the lock (a write blocks up to the write timeout).
            ser = self._serial
            connected = self.connected and ser is not None
            if connected:
                seq = self._seq
                self._seq = (self._seq + 1) & 0xFFFF
                # stamped before it can be answered: the reader thread records the reply with this time
                pending = _Pending(seq, command, args, now_s(), threading.Event())
                if track:
                    with self._pending_lock:
                        self._pending[seq] = pending
                try:
                    write_frame(ser, p.encode_frame(msg, seq, payload))
                except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                    # TypeError/AttributeError: pyserial raises these when the port is closed under a write
                    with self._pending_lock:
                        self._pending.pop(seq, None)
                    failure = exc
        if not connected:
            if track:
                self.bus.publish_command(CommandRecord(now_s(), self.name, command, args, "not sent: not connected"))
            raise NotConnected(f"{self.name} is not connected; {command} was not sent.")
        if failure is not None:
            t_failed = now_s()
            # The port is closed before anything is published: a command waiting for the lock must not write to it.
            self._lost_connection(f"write failed: {failure}")
            if track:
                self.bus.publish_command(CommandRecord(t_failed, self.name, command, args, f"error: {failure}"))
            raise NotConnected(f"{self.name}: {command} could not be written: {failure}") from failure
        if not wait:
            return None
        if not pending.done.wait(self.command_timeout_s):
            with self._pending_lock:
                self._pending.pop(seq, None)
            self.bus.publish_command(CommandRecord(pending.t_sent_s, self.name, command, args, "timeout"))
            raise CommandTimeout(f"{self.name} did not answer {command} within {self.command_timeout_s:g} s.")
        if pending.failure:
            what = "identity" if command == "identify" else f"answer to {command}"
            raise DeviceError(f"{self.name} on {self.port} sent an unreadable {what}: {pending.failure}.")
        reply = pending.reply
        if reply is None:
            raise NotConnected(f"{self.name} was disconnected before it answered {command}.")
        if reply.type == p.Msg.REFUSE:
            _, code = p.REFUSE_HEAD.unpack_from(reply.payload)
            raise CommandRefused(command, code, p.text(reply.payload[p.REFUSE_HEAD.size :]))
        return reply

    # --- reader thread ------------------------------------------------------------------------------------------
    def _reader_loop(self) -> None:
        self._guarded("reader", self._read_forever)

    def _read_forever(self) -> None:
        while self._running.is_set():
            ser = self._serial
            if ser is None:
                self._try_reconnect()
                continue
            try:
                data = ser.read(ser.in_waiting or 1)
                if data and ser.in_waiting:
                    data += ser.read(ser.in_waiting)
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                # TypeError/AttributeError: pyserial raises these when the port is closed under a blocked read
                if self._running.is_set():
                    self._lost_connection(f"read failed: {exc}")
                continue
            t_arrival = now_s()
            if data:
                self.counters.bytes_in += len(data)
                too_long = self._decoder.too_long
                for frame in self._decoder.feed(data):
                    self._handle_contained(frame, t_arrival)
                if self._decoder.too_long != too_long:
                    self._fail_pending("identify", f"its answer is longer than the {p.MAX_FRAME_BYTES} bytes a frame "
                                       "may hold")
                self.counters.frames = self._decoder.frames
                self.counters.bad_frames = self._decoder.bad_frames + self.counters.rejected_frames
                self.counters.resyncs = self._decoder.resyncs
            self._check_liveness(t_arrival)

    def _fail_pending(self, command: str, why: str) -> None:
        """A frame too long to read arrived while `command` waits: it was most likely the answer; say so at once."""
        with self._pending_lock:
            seq = next((k for k, v in self._pending.items() if v.command == command), None)
            pending = self._pending.pop(seq) if seq is not None else None
        if pending is not None:
            pending.failure = why
            pending.done.set()

    def _guarded(self, what: str, loop: Callable[[], None]) -> None:
        """Run a driver thread; if it ends for any cause but close(), the driver is honestly disconnected."""
        why = f"the {what} thread ended"
        try:
            loop()
        except BaseException as exc:  # noqa: BLE001 - whatever ended the thread, the driver must say so
            why = f"the {what} thread failed: {type(exc).__name__}: {exc}"
            log.exception("%s: %s", self.name, why)
        if self._running.is_set():  # not a close(): the other thread and the heartbeats stop with this one
            self._dead = why
            self._running.clear()
            self._lost_connection(why, forced=True)

    def _decode_telemetry(self, payload: bytes, seq: int, t_arrival: float) -> np.ndarray:
        raise NotImplementedError

    def _check_liveness(self, t: float) -> None:
        if self.connected and not self.telemetry_lost and t - self.last_frame_s > TELEMETRY_LOST_S:
            self.telemetry_lost = True
            self._event("connection", "high", f"{self.name}: no telemetry for {TELEMETRY_LOST_S * 1000:.0f} ms")
        self._expire_pending(t)

    def _expire_pending(self, t: float) -> None:
        with self._pending_lock:
            expired = [q for q in self._pending.values() if q.t_sent_s and t - q.t_sent_s > self.command_timeout_s]
            for q in expired:
                del self._pending[q.seq]
        for q in expired:
            if not q.done.is_set():
                self.bus.publish_command(CommandRecord(q.t_sent_s, self.name, q.command, q.args, "timeout"))

    def _lost_connection(self, why: str, *, forced: bool = False) -> None:
        if not self.connected and not forced:
            return
        was_connected = self.connected
        t_detected = now_s()  # stamped at detection: closing the port and waking waiters take time
        self._close_port()
        with self._pending_lock:
            orphans, self._pending = list(self._pending.values()), {}
        for q in orphans:  # wake the waiters: their reply will never come
            q.done.set()
            self.bus.publish_command(CommandRecord(q.t_sent_s, self.name, q.command, q.args, "error: disconnected"))
        if was_connected or forced:
            self.counters.disconnects += 1
            self._event_at(t_detected, "connection", "high", f"{self.name} disconnected ({why})", reason=why)

    def _try_reconnect(self) -> None:
        if not self.auto_reconnect or self._refusal:
            time.sleep(READ_TIMEOUT_S)
            return
        time.sleep(0.1)
        if not self._running.is_set():
            return
        try:
            self._open_port()
        except NotConnected:
            return
        self.counters.reconnects += 1
        try:
            self._make_safe()
            self._send(p.Msg.IDENTIFY, b"", "identify", {}, wait=False)  # the reader checks it; then `_ready`
        except DeviceError:
            return
        self._event("connection", "medium", f"{self.name} reconnected on {self.port}; the device was made safe")

    # --- heartbeat thread -------------------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        self._guarded("heartbeat", self._beat_forever)

    def heartbeat_due(self) -> bool:
        """Heartbeats go out only while everything they vouch for holds: the port open, the device made safe and
        identified, the reader thread alive, telemetry fresh (new samples within 250 ms) and the host alive."""
        reader = self._threads[0] if self._threads else None
        return (self.connected and self._ready and reader is not None and reader.is_alive()
                and now_s() - self.last_frame_s <= TELEMETRY_LOST_S and self.liveness())

    def _beat_forever(self) -> None:
        next_t = time.monotonic()
        while self._running.is_set():
            next_t += self.heartbeat_period_s
            if self.heartbeat_due():
                try:
                    self.heartbeat()
                except DeviceError:
                    pass  # the reader reports the disconnect and reconnects; heartbeats resume after it
            delay = next_t - time.monotonic()
            if delay < 0:
                next_t = time.monotonic()
            else:
                time.sleep(delay)

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
            "stopped_because": self._dead,
            "identity": self.identity.as_dict() if self.identity else None,
            **asdict(self.counters),
        }
