"""The serial link of one device: the port, the reader and heartbeat threads, command/ACK matching, the write lock.

A device driver owns one `SerialLink` (drivers/base.py). The link knows frames, not what they mean: every frame it
reads goes to its *client* (the device: `LinkClient`), which decodes telemetry, checks identities and reports faults;
the client in turn says whether heartbeats are due and makes the device safe after a reconnection. What the link
reports itself are `connection` events with the codes of drivers/codes.py (`details["link"]`, and for a loss
`details["disconnect"]`) and the command records of what it wrote.

The transport is injectable: anything with the `Transport` methods (a pyserial port, the default `open_serial`; a pty
or socket in a test) opened by a factory `(port, baudrate) -> Transport`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import serial

from drivers import protocol as p
from drivers.codes import DisconnectReason, LinkEvent
from drivers.errors import CommandRefused, CommandTimeout, DeviceError, NotConnected, StartInhibited
from drivers.events import CommandRecord, Event, Publisher, now_s
from drivers.serial_write import SelectWritePort, open_write_timeout

__all__ = ["DEFAULT_BAUD", "READ_TIMEOUT_S", "TELEMETRY_LOST_S", "Counters", "LinkClient", "SerialLink", "Transport",
           "open_serial"]

log = logging.getLogger(__name__)

DEFAULT_BAUD = 921600
READ_TIMEOUT_S = 0.02  # a blocking read wakes at least this often: bounds disconnect/stall detection latency
# Samples missing for this long, on either clock, is lost telemetry: the driver reports it and stops its heartbeats,
# the safety monitor trips `telemetry_lost` (docs/protocol.md, "Telemetry watchdog"). The one definition.
TELEMETRY_LOST_S = 0.25
# What a transport raises when the port is gone. TypeError/AttributeError: pyserial raises these when the port is
# closed under a blocked read or write.
PORT_ERRORS = (serial.SerialException, OSError, TypeError, AttributeError)
# What a port that failed mid-session means to a clinician, written to the recording and shown as it is: pyserial's and
# the OS's own text ("device reports readiness to read but returned no data …", "[Errno 5] …") goes to the log only.
PORT_BROKE_WORDS = "the link broke (the device was unplugged or switched off, or another program used its port)"


def log_port_failure(exc: BaseException, name: str, doing: str) -> None:
    """The library's own text of a port failure, to the log only (the events say PORT_BROKE_WORDS). Called after
    `lost()`: nothing may delay closing the port once a write failed, or a command waiting for the write lock
    writes to the failed port too."""
    log.info("%s: %s failed: %s: %s", name, doing, type(exc).__name__, exc)


class Transport(Protocol):
    """A byte stream to one device. `read(n)` returns up to n bytes, or b"" once its read timeout (at most
    READ_TIMEOUT_S) has passed; `write(data)` blocks at most its write timeout (0.5 s); both raise OSError (or
    serial.SerialException) when the port is gone. `in_waiting`: bytes that can be read without blocking."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


TransportFactory = Callable[[str, int], Transport]


def open_serial(port: str, baudrate: int) -> Transport:
    """The default transport: a pyserial port with the link's read timeout (READ_TIMEOUT_S) and a write that fails
    only when the port took no byte for 0.5 s (`drivers.serial_write`: select, not the time the call took, so a
    loaded machine does not report a healthy device as gone)."""
    return SelectWritePort(port, baudrate, timeout=READ_TIMEOUT_S, write_timeout=open_write_timeout())


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
class Pending:
    """A command written and waiting for its answer (matched by sequence number in `SerialLink.take_pending`)."""

    seq: int
    command: str
    args: dict
    t_sent_s: float
    done: threading.Event
    reply: p.Frame | None = None
    publish: bool = True
    failure: str = ""  # the answer came but could not be read (in words)


class LinkClient(Protocol):
    """What a link needs from the device that owns it (drivers.base.SerialDevice is one)."""

    name: str
    bus: Publisher
    counters: Counters

    def link_opened(self) -> None:
        """The port was (re)opened: forget every per-connection state (sequence, device clock, identity)."""

    def frame_arrived(self, frame: p.Frame, t_arrival: float) -> None:
        """One frame read; must not raise (whatever it holds)."""

    def link_checked(self, t: float) -> None:
        """Called after every read (at least every READ_TIMEOUT_S): the telemetry watchdog."""

    def link_reopened(self) -> None:
        """The port came back: make the device safe and ask who it is (raises DeviceError if that fails)."""

    def heartbeat_due(self) -> bool: ...

    def heartbeat(self) -> None: ...


class SerialLink:
    """One port, its two threads and the commands in flight. Thread-safe: commands may come from any thread."""

    def __init__(
        self,
        client: LinkClient,
        port: str,
        *,
        baudrate: int = DEFAULT_BAUD,
        heartbeat_period_s: float = 0.05,
        command_timeout_s: float = 1.0,
        auto_reconnect: bool = True,
        transport: TransportFactory = open_serial,
    ) -> None:
        self.client = client
        self.port = port
        self.baudrate = baudrate
        self.heartbeat_period_s = heartbeat_period_s
        self.command_timeout_s = command_timeout_s
        self.auto_reconnect = auto_reconnect
        self.open_transport = transport
        self.transport: Transport | None = None
        self.decoder = p.FrameDecoder()
        self.threads: list[threading.Thread] = []
        self.dead = ""  # why a link thread ended (then the link stays down until close and open)
        self.hold = False  # the device was refused: no reconnection to it until the next open
        self._write_lock = threading.Lock()
        self._down_lock = threading.Lock()  # taking the link down is one step: exactly one caller finds it up
        self._pending: dict[int, Pending] = {}
        self._pending_lock = threading.Lock()
        self._seq = 0
        # owner -> why: while any is set, START and ARM on are refused unwritten (inhibit_starts). Kept across
        # reconnections: a latch outlives the connection it was set on.
        self._inhibits: dict[str, str] = {}
        self._running = threading.Event()
        self._connected = threading.Event()

    @property
    def name(self) -> str:
        return self.client.name

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def running(self) -> bool:
        """The threads run (between `start` and `stop`, unless one of them died)."""
        return self._running.is_set()

    # --- life cycle ---------------------------------------------------------------------------------------------
    def open(self, what: str = "device") -> None:
        """Open the port (NotConnected in words if it cannot be) and reset the per-connection state."""
        try:
            transport = self.open_transport(self.port, self.baudrate)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise NotConnected(
                f"cannot open the {what} on {self.port}: {exc}. "
                "Check the cable and the port name (`python main.py drivers` lists the drivers)."
            ) from exc
        transport.reset_input_buffer()
        self.transport = transport
        self.decoder = p.FrameDecoder()
        self.client.link_opened()
        self._connected.set()

    def start(self, what: str = "device") -> None:
        """Open the port and start the reader thread (heartbeats start with `start_heartbeats`)."""
        if self._running.is_set():
            raise DeviceError(f"{self.name} is already connected")
        self.dead = ""
        self.hold = False
        self.open(what)
        self._running.set()
        self.threads = [threading.Thread(target=self._reader_loop, name=f"{self.name}-reader", daemon=True)]
        self.threads[0].start()

    def start_heartbeats(self) -> None:
        heartbeat = threading.Thread(target=self._heartbeat_loop, name=f"{self.name}-heartbeat", daemon=True)
        self.threads.append(heartbeat)
        heartbeat.start()

    def stop(self) -> None:
        """Stop the threads (joined, 2 s at most each) and release the port."""
        self._running.clear()
        for t in self.threads:
            if t is not threading.current_thread():
                t.join(timeout=2)
        self.threads = []
        self.close_port()

    def abandon(self) -> None:
        """Let the threads end and drop the port without a word to the device: what a crashed host leaves (tests)."""
        self._running.clear()
        self.close_port()

    def close_port(self) -> None:
        self._take_down()
        transport, self.transport = self.transport, None
        if transport is not None:
            try:
                transport.close()
            except PORT_ERRORS:
                pass

    def _take_down(self) -> bool:
        """Mark the link down; True for the one caller that found it up (a failed write and a failed read may race)."""
        with self._down_lock:
            was_up = self._connected.is_set()
            self._connected.clear()
            return was_up

    def reader_alive(self) -> bool:
        return bool(self.threads) and self.threads[0].is_alive()

    # --- the start inhibit --------------------------------------------------------------------------------------
    def inhibit_starts(self, owner: str, why: str) -> None:
        """From now on START and ARM on are refused unwritten (StartInhibited, `why` in its words) until `owner`
        allows them again. The gate is read under the write lock, where the command is written: a START that read it
        open is on the wire before any STOP written after this call, and one that reads it shut is never written.
        So the owner sets the inhibit first, then writes its STOP (an interlock's latch, a session's pause)."""
        self._inhibits.setdefault(owner, why)  # its first reason stands until it allows starts again

    def allow_starts(self, owner: str) -> None:
        """Lift `owner`'s inhibit (the operator's reset of an interlock, a session's next step); others stay."""
        self._inhibits.pop(owner, None)

    def start_inhibited(self) -> str | None:
        """Why START and ARM on are refused now (the first inhibit set), or None."""
        return next(iter(list(self._inhibits.values())), None)

    # --- commands -----------------------------------------------------------------------------------------------
    def send(
        self, msg: int, payload: bytes, command: str, args: dict, *, wait: bool = True, track: bool = True
    ) -> p.Frame | None:
        """Write one command; if `wait`, wait for its answer and return it (CommandRefused, CommandTimeout,
        NotConnected or DeviceError in words otherwise). Every tracked command is published as a CommandRecord."""
        # Nothing is published while the write lock is held: the bus runs the safety monitor, which may write a STOP
        # to this very device (a failed write reports a disconnect, the disconnect trips an interlock).
        failure: Exception | None = None
        bus = self.client.bus
        starting = msg == p.Msg.START or (msg == p.Msg.ARM and payload != p.ARM_PAYLOAD.pack(0))
        with self._write_lock:
            inhibited = self.start_inhibited() if starting else None
            # The port is read under the lock: another thread's failed write may have closed it while this one
            # waited for the lock (a write blocks up to the write timeout).
            transport = self.transport
            connected = self.connected and transport is not None
            if connected and inhibited is None:
                seq = self._seq
                self._seq = (self._seq + 1) & 0xFFFF
                # stamped before it can be answered: the reader thread records the reply with this time
                pending = Pending(seq, command, args, now_s(), threading.Event())
                if track:
                    with self._pending_lock:
                        self._pending[seq] = pending
                try:
                    transport.write(p.encode_frame(msg, seq, payload))
                except PORT_ERRORS as exc:
                    with self._pending_lock:
                        self._pending.pop(seq, None)
                    failure = exc
                    # Down before the lock is released: a command waiting for it finds the link down and is not
                    # written to the failed port (nor, once reconnected, does its late failure drop the new link).
                    went_down = self._take_down()
        if inhibited is not None:
            if track:
                bus.publish_command(CommandRecord(now_s(), self.name, command, args, f"not sent: {inhibited}"))
            raise StartInhibited(f"{self.name}: {command} was not sent: {inhibited}.")
        if not connected:
            if track:
                bus.publish_command(CommandRecord(now_s(), self.name, command, args, "not sent: not connected"))
            raise NotConnected(f"{self.name} is not connected; {command} was not sent.")
        if failure is not None:
            t_failed = now_s()
            # The port is closed before anything is published: a command waiting for the lock must not write to it.
            words = PORT_BROKE_WORDS
            self.lost(f"write failed: {words}", DisconnectReason.WRITE_FAILED, was_up=went_down)
            log_port_failure(failure, self.name, "write")
            if track:
                bus.publish_command(CommandRecord(t_failed, self.name, command, args, f"error: {words}"))
            raise NotConnected(f"{self.name}: {command} could not be written: {words}") from failure
        if not wait:
            return None
        if not pending.done.wait(self.command_timeout_s):
            with self._pending_lock:
                self._pending.pop(seq, None)
            bus.publish_command(CommandRecord(pending.t_sent_s, self.name, command, args, "timeout"))
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

    def take_pending(self, acked: int, identity: bool) -> Pending | None:
        """The command an answer (ACK/REFUSE, or IDENTITY if `identity`) for sequence `acked` belongs to, no longer
        pending; None if nothing waits for it (a late answer, or an IDENTITY for a command that was not IDENTIFY)."""
        with self._pending_lock:
            pending = self._pending.get(acked)
            if pending is not None and identity != (pending.command == "identify"):
                pending = None
            if pending is not None:
                del self._pending[acked]
        return pending

    def _fail_pending(self, command: str, why: str) -> None:
        """A frame too long to read arrived while `command` waits: it was most likely the answer; say so at once."""
        with self._pending_lock:
            seq = next((k for k, v in self._pending.items() if v.command == command), None)
            pending = self._pending.pop(seq) if seq is not None else None
        if pending is not None:
            pending.failure = why
            pending.done.set()

    def _expire_pending(self, t: float) -> None:
        with self._pending_lock:
            expired = [q for q in self._pending.values() if q.t_sent_s and t - q.t_sent_s > self.command_timeout_s]
            for q in expired:
                del self._pending[q.seq]
        for q in expired:
            if not q.done.is_set():
                self.client.bus.publish_command(CommandRecord(q.t_sent_s, self.name, q.command, q.args, "timeout"))

    # --- losing and finding the device --------------------------------------------------------------------------
    def lost(self, why: str, reason: DisconnectReason, *, forced: bool = False, was_up: bool | None = None) -> None:
        """The port is gone (or the device refused): close it, wake every waiter, publish one `connection` event
        (severity high, details link=disconnected, disconnect=`reason`). A refused device is not reconnected to.
        `was_up`: the caller already took the link down (`_take_down`) and found it up, or not; by default `lost`
        takes it down itself. Of callers racing, only the one that found the link up publishes (or a `forced` one)."""
        if reason == DisconnectReason.REFUSED:
            self.hold = True
        t_detected = now_s()  # stamped at detection: closing the port and waking waiters take time
        was_connected = self._take_down() if was_up is None else was_up
        if not was_connected and not forced:
            return
        self.close_port()
        with self._pending_lock:
            orphans, self._pending = list(self._pending.values()), {}
        for q in orphans:  # wake the waiters: their reply will never come
            q.done.set()
            self.client.bus.publish_command(
                CommandRecord(q.t_sent_s, self.name, q.command, q.args, "error: disconnected"))
        if was_connected or forced:
            self.client.counters.disconnects += 1
            self.event(t_detected, "high", f"{self.name} disconnected ({why})", LinkEvent.DISCONNECTED,
                       disconnect=reason.value, reason=why)

    def event(self, t_host_s: float, severity: str, message: str, link: LinkEvent, **details: object) -> None:
        """Publish a `connection` event of this link, stamped `t_host_s`, with `details["link"]`."""
        self.client.bus.publish_event(
            Event(t_host_s, "connection", severity, self.name, message, {"link": link.value, **details}))

    def _try_reconnect(self) -> None:
        if not self.auto_reconnect or self.hold:
            time.sleep(READ_TIMEOUT_S)
            return
        time.sleep(0.1)
        if not self._running.is_set():
            return
        try:
            self.open()
        except NotConnected:
            return
        self.client.counters.reconnects += 1
        try:
            self.client.link_reopened()
        except DeviceError:
            return
        self.event(now_s(), "medium", f"{self.name} reconnected on {self.port}; the device was made safe",
                   LinkEvent.RECONNECTED)

    # --- threads ------------------------------------------------------------------------------------------------
    def _guarded(self, what: str, loop: Callable[[], None]) -> None:
        """Run a link thread; if it ends for any cause but stop(), the link is honestly down."""
        why = f"the {what} thread ended"
        try:
            loop()
        except BaseException as exc:  # noqa: BLE001 - whatever ended the thread, the driver must say so
            why = f"the {what} thread failed: {type(exc).__name__}: {exc}"
            log.exception("%s: %s", self.name, why)
        if self._running.is_set():  # not a stop(): the other thread and the heartbeats stop with this one
            self.dead = why
            self._running.clear()
            self.lost(why, DisconnectReason.READER_DIED, forced=True)

    def _reader_loop(self) -> None:
        self._guarded("reader", self._read_forever)

    def _read_forever(self) -> None:
        counters = self.client.counters
        while self._running.is_set():
            transport = self.transport
            if transport is None:
                self._try_reconnect()
                continue
            try:
                data = transport.read(transport.in_waiting or 1)
                if data and transport.in_waiting:
                    data += transport.read(transport.in_waiting)
            except PORT_ERRORS as exc:
                if self._running.is_set():
                    self.lost(f"read failed: {PORT_BROKE_WORDS}", DisconnectReason.READ_FAILED)
                    log_port_failure(exc, self.name, "read")
                continue
            t_arrival = now_s()
            if data:
                counters.bytes_in += len(data)
                decoder = self.decoder
                too_long = decoder.too_long
                for frame in decoder.feed(data):
                    self.client.frame_arrived(frame, t_arrival)
                if decoder.too_long != too_long:
                    self._fail_pending("identify", f"its answer is longer than the {p.MAX_FRAME_BYTES} bytes a frame "
                                       "may hold")
                counters.frames = decoder.frames
                counters.bad_frames = decoder.bad_frames + counters.rejected_frames
                counters.resyncs = decoder.resyncs
            self.client.link_checked(t_arrival)
            self._expire_pending(t_arrival)

    def _heartbeat_loop(self) -> None:
        self._guarded("heartbeat", self._beat_forever)

    def _beat_forever(self) -> None:
        next_t = time.monotonic()
        while self._running.is_set():
            next_t += self.heartbeat_period_s
            if self.client.heartbeat_due():
                try:
                    self.client.heartbeat()
                except DeviceError:
                    pass  # the reader reports the disconnect and reconnects; heartbeats resume after it
            delay = next_t - time.monotonic()
            if delay < 0:
                next_t = time.monotonic()
            else:
                time.sleep(delay)
