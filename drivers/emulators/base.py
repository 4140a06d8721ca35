"""What both emulated devices share: the command loop, the sample clock, telemetry framing, the watchdog, faults.

Two threads per emulator. The reader waits on the pty and answers commands; the ticker advances the physical model
every `tick_s` (1 ms) on a fixed schedule against time.monotonic. Both call `_advance_to(now)` under one lock before
they act, so the model is always stepped sample by sample up to the present first: a command or an injected fault
takes effect between two samples at the moment it happened, never retroactively, and a late ticker simply catches up
(sample k belongs to t_start + k·period, whatever the thread scheduling did).

Device-side safety lives here, once: the watchdog (no HEARTBEAT for `heartbeat_timeout_s` while armed or active →
stop, latch WATCHDOG, FAULT), fault latching with RESET refused while the cause persists, and "every trip disarms",
so emission after any trip needs a new ARM and START.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from drivers.emulators.link import LinkStats, PtyLink
from drivers.protocol import (
    ACK_PAYLOAD,
    ARM_PAYLOAD,
    FAULT_HEAD,
    PROTOCOL_VERSION,
    REFUSE_HEAD,
    SET_PAYLOAD,
    STATUS_HEAD,
    Frame,
    FrameDecoder,
    Msg,
    Refusal,
    State,
    StopReason,
    identity_payload,
)

log = logging.getLogger(__name__)


class Refused(Exception):
    """Raised by a command handler: the command is answered with REFUSE(code, reason)."""

    def __init__(self, code: Refusal, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EmulatorState:
    """Fields both devices report in `state()`; times are time.monotonic() seconds (None: never happened)."""

    t: float  # when the snapshot was taken
    device_time_us: int  # device clock of the next sample
    samples_generated: int
    telemetry_frames_sent: int
    armed: bool
    active: bool  # light: shutter not fully closed; pen: motor driven or still spinning down
    contact: bool
    faults: int
    heartbeats_received: int
    last_heartbeat_at: float | None
    last_command_at: dict[str, float]  # message type name -> last receipt time
    injected_at: dict[str, float]  # injection method name -> last time it was called
    commands_received: int
    bad_frames_received: int
    stalled: bool
    corrupt_rate: float
    link: LinkStats
    errors: int  # exceptions caught in the emulator's threads (should stay 0)
    last_stop_at: float | None  # when the device last became physically safe (shutter closed / motor stopped)
    last_stop_reason: StopReason | None


class Emulator(ABC):
    """Base of LightEmulator and PenEmulator: serve the protocol on a pty and run a physical model behind it."""

    kind = ""  # "light" or "needling"
    short_name = "device"
    fault_bits: type[IntEnum]

    def __init__(
        self,
        *,
        rate_hz: float = 2000.0,
        samples_per_frame: int = 20,
        baud: int | None = None,
        corrupt_rate: float = 0.0,
        seed: int | None = 0,
        port: str | None = None,
        heartbeat_timeout_s: float = 0.25,
        contact: bool = True,
        clock_ppm: float = 0.0,
        tick_s: float = 0.001,
        tx_buffer_bytes: int = 4096,
        serial_number: str = "EMU-0001",
    ) -> None:
        period_us = round(1e6 / rate_hz)
        if not 1 <= period_us <= 0xFFFF:
            raise ValueError(f"rate_hz must give a sample period of 1..65535 µs, not {rate_hz} Hz")
        if not 1 <= samples_per_frame <= 255:
            raise ValueError(f"samples_per_frame must be 1..255, not {samples_per_frame}")
        self.period_us = period_us
        self.rate_hz = 1e6 / period_us
        self.samples_per_frame = samples_per_frame
        self.dt_s = period_us * 1e-6  # the device's own idea of a sample interval (its integration step)
        self._real_period_s = self.dt_s / (1.0 + clock_ppm * 1e-6)  # a fast crystal makes samples come sooner
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.tick_s = tick_s
        self.serial_number = serial_number
        self.seed = seed
        self._link = PtyLink(self.short_name, port=port, baud=baud, tx_buffer_bytes=tx_buffer_bytes, seed=seed)
        self._link.set_corrupt_rate(corrupt_rate)
        self._lock = threading.RLock()
        self._decoder = FrameDecoder()
        self._stop_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self._t_start = time.monotonic()
        self._k = 0  # index of the next sample
        self._pending: list[tuple] = []
        self._telemetry_frames = 0
        self._stalled = False
        self._contact = contact
        self.armed = False
        self.faults = 0
        self._heartbeats = 0
        self._last_heartbeat_at: float | None = None
        self._watchdog_from = 0.0  # the watchdog window starts at the later of this and the last heartbeat
        self._last_command_at: dict[str, float] = {}
        self._injected_at: dict[str, float] = {}
        self._commands = 0
        self._errors = 0
        self._last_stop_at: float | None = None
        self._last_stop_reason: StopReason | None = None
        self._started = False
        self._deferred: list[bytes] | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------------
    @property
    def port(self) -> str:
        """The stable path to open (a symlink to the current pty slave; absent while unplugged)."""
        return self._link.port

    @property
    def pty_path(self) -> str | None:
        return self._link.pty_path

    def start(self) -> Emulator:
        if self._started:
            raise RuntimeError("this emulator was already started")
        self._started = True
        self._link.start()
        with self._lock:
            self._t_start = time.monotonic()
            self._power_on(self._t_start)
        for target, name in ((self._read_loop, "rx"), (self._tick_loop, "tick")):
            thread = threading.Thread(target=target, name=f"emu-{name}:{self.short_name}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self) -> None:
        self._stop_event.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._threads.clear()
        self._link.shutdown()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- fault injection (thread-safe, any time) ----------------------------------------------------------------
    def inject(self, name: str, **kwargs: Any) -> None:
        """Inject a fault by name: unplug, replug, corrupt(rate), stall(on), set_contact(on), contact_lost, ..."""
        method = getattr(self, name, None)
        if name.startswith("_") or name not in self._injectable() or method is None:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(self._injectable()))}")
        method(**kwargs)

    def _injectable(self) -> set[str]:
        return {"unplug", "replug", "corrupt", "stall", "set_contact", "contact_lost", "clear_faults_cause"}

    def unplug(self) -> None:
        """Pull the cable: the host's reads fail, the port path disappears, and the device makes itself safe."""
        with self._lock:
            now = self._injected("unplug")
            if self._supervised():
                self._trip(self.fault_bits["WATCHDOG"], "Host link lost: the cable was unplugged.", now)
        self._link.unplug()

    def replug(self) -> None:
        """Plug the cable back: a fresh pty behind the same port path."""
        with self._lock:
            self._injected("replug")
            self._decoder = FrameDecoder()
        self._link.plug()

    def corrupt(self, rate: float) -> None:
        """Flip or insert random bytes in the outgoing stream at this fraction of bytes (0 turns it off)."""
        with self._lock:
            self._link.set_corrupt_rate(rate)
            self._injected("corrupt")

    def stall(self, on: bool = True) -> None:
        """Stop (or resume) sending telemetry; the device keeps running and answering commands."""
        with self._lock:
            self._injected("stall")
            self._stalled = on

    def set_contact(self, on: bool) -> None:
        """The skin sensor sees skin (True) or not (False) from now on."""
        with self._lock:
            self._injected("set_contact")
            self._contact = on

    def contact_lost(self) -> None:
        self.set_contact(False)

    def clear_faults_cause(self) -> None:
        """Remove every injected cause (lamp replaced, lamp cooled, jam freed); latched bits stay until RESET."""
        with self._lock:
            self._clear_causes(self._injected("clear_faults_cause"))

    def _injected(self, name: str) -> float:
        """Bring the model up to now and note when this fault was injected. Lock held."""
        now = self._advance_to(time.monotonic())
        self._injected_at[name] = now
        return now

    # --- snapshot -----------------------------------------------------------------------------------------------
    def state(self) -> EmulatorState:
        with self._lock:
            now = self._advance_to(time.monotonic())
            return self._snapshot(now)

    def _base_fields(self, now: float) -> dict[str, Any]:
        return dict(
            t=now,
            device_time_us=self._k * self.period_us,
            samples_generated=self._k,
            telemetry_frames_sent=self._telemetry_frames,
            armed=self.armed,
            active=self._active(),
            contact=self._contact,
            faults=self.faults,
            heartbeats_received=self._heartbeats,
            last_heartbeat_at=self._last_heartbeat_at,
            last_command_at=dict(self._last_command_at),
            injected_at=dict(self._injected_at),
            commands_received=self._commands,
            bad_frames_received=self._decoder.bad_frames,
            stalled=self._stalled,
            corrupt_rate=self._link.corrupt_rate,
            link=self._link.stats(),
            errors=self._errors + self._link.writer_errors,
            last_stop_at=self._last_stop_at,
            last_stop_reason=self._last_stop_reason,
        )

    # --- threads ------------------------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        while not self._stop_event.is_set():
            try:
                data = self._link.read(0.05)
                if not data:
                    continue
                with self._lock:
                    frames = self._decoder.feed(data)
                    for frame in frames:
                        self._handle(frame)
            except Exception:  # noqa: BLE001 - log, count and keep serving
                self._errors += 1
                log.exception("%s emulator: error while serving a command", self.short_name)
                time.sleep(0.01)

    def _tick_loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop_event.is_set():
            try:
                with self._lock:
                    now = self._advance_to(time.monotonic())
                next_tick += self.tick_s
                if next_tick < now:  # fell behind (suspended, overloaded): resume the grid from now
                    next_tick = now + self.tick_s
                time.sleep(max(0.0, next_tick - time.monotonic()))
            except Exception:  # noqa: BLE001 - log, count and keep ticking
                self._errors += 1
                log.exception("%s emulator: error in the sample loop", self.short_name)
                time.sleep(0.01)

    # --- sample clock and telemetry -----------------------------------------------------------------------------
    def _advance_to(self, now: float) -> float:
        """Step the model through every sample due by `now` and send each full telemetry frame. Lock held."""
        spf = self.samples_per_frame
        while True:
            t = self._t_start + self._k * self._real_period_s
            if t > now:
                return now
            self._pending.append(self._sample(t))
            self._k += 1
            if len(self._pending) == spf:
                if not self._stalled:
                    t0_us = (self._k - spf) * self.period_us
                    self._link.send(Msg.TELEMETRY, self._telemetry(t0_us, self._pending), droppable=True)
                    self._telemetry_frames += 1
                self._pending = []

    # --- messages -----------------------------------------------------------------------------------------------
    def _send_status(self, state: State, reason: StopReason, text: str) -> None:
        payload = STATUS_HEAD.pack(state, reason) + text.encode()
        if self._deferred is not None:  # inside a command: the ACK goes first
            self._deferred.append(payload)
        else:
            self._link.send(Msg.STATUS, payload)

    def _mark_stopped(self, t: float, reason: StopReason, text: str) -> None:
        """The device became physically safe at t: record it and tell the host."""
        self._last_stop_at = t
        self._last_stop_reason = reason
        self._send_status(State.IDLE, reason, text)

    def _trip(self, bit: int, text: str, t: float) -> None:
        """Latch a fault bit (FAULT on a new bit), disarm and make the device safe."""
        new = bit & ~self.faults
        self.faults |= bit
        if new:
            self._link.send(Msg.FAULT, FAULT_HEAD.pack(self.faults, new) + text.encode())
        if bit == self.fault_bits["WATCHDOG"]:
            reason = StopReason.WATCHDOG
        elif bit == self.fault_bits["CONTACT_LOST"]:
            reason = StopReason.CONTACT_LOST
        else:
            reason = StopReason.FAULT
        self._halt(t, reason, text)

    def _supervised(self) -> bool:
        return self.armed or self._active()

    def _check_watchdog(self, t: float) -> None:
        if not self._supervised():
            return
        heard = max(self._watchdog_from, self._last_heartbeat_at or 0.0)
        if t - heard > self.heartbeat_timeout_s:
            ms = self.heartbeat_timeout_s * 1000
            self._trip(self.fault_bits["WATCHDOG"], f"No heartbeat from the host for {ms:.0f} ms: stopped.", t)

    # --- commands -----------------------------------------------------------------------------------------------
    def _handle(self, frame: Frame) -> None:
        now = self._advance_to(time.monotonic())
        try:
            name = Msg(frame.type).name
        except ValueError:
            name = f"0x{frame.type:02x}"
        self._last_command_at[name] = now
        if frame.type == Msg.HEARTBEAT:
            self._heartbeats += 1
            self._last_heartbeat_at = now
            return
        self._commands += 1
        self._deferred = []
        try:
            self._dispatch(frame, now)
        finally:
            deferred, self._deferred = self._deferred, None
            for payload in deferred:
                self._link.send(Msg.STATUS, payload)

    def _dispatch(self, frame: Frame, now: float) -> None:
        try:
            if frame.type == Msg.IDENTIFY:
                self._expect_empty(frame)
                info = {"kind": self.kind, "protocol_version": PROTOCOL_VERSION, **self._identity(now)}
                info.update(rate_hz=self.rate_hz, samples_per_frame=self.samples_per_frame)
                self._link.send(Msg.IDENTITY, ACK_PAYLOAD.pack(frame.seq) + identity_payload(info))
                return
            if frame.type == Msg.SET:
                if len(frame.payload) != SET_PAYLOAD.size:
                    raise Refused(Refusal.BAD_PAYLOAD, f"SET takes {SET_PAYLOAD.size} bytes (param id, f32 value).")
                param, value = SET_PAYLOAD.unpack(frame.payload)
                self._set(param, value, now)
            elif frame.type == Msg.ARM:
                if len(frame.payload) != ARM_PAYLOAD.size or frame.payload[0] not in (0, 1):
                    raise Refused(Refusal.BAD_PAYLOAD, "ARM takes one byte: 1 to arm, 0 to disarm.")
                self._arm(bool(frame.payload[0]), now)
            elif frame.type == Msg.START:
                self._expect_empty(frame)
                if self.faults:
                    raise Refused(Refusal.FAULT_LATCHED, f"A fault is latched ({self._fault_names()}): RESET first.")
                if self._active():
                    raise Refused(Refusal.BAD_STATE, "Already active: STOP first.")
                if not self.armed:
                    raise Refused(Refusal.NOT_ARMED, "Not armed: ARM before START.")
                self._start(now)
            elif frame.type == Msg.STOP:
                self._expect_empty(frame)
                self._halt(now, StopReason.COMMAND, "Stopped by the host.")
            elif frame.type == Msg.RESET:
                self._expect_empty(frame)
                persisting = self._persisting(now) & self.faults
                if persisting:
                    raise Refused(Refusal.CAUSE_PERSISTS, self._persist_reason(persisting))
                self.faults = 0
            else:
                raise Refused(Refusal.UNKNOWN_COMMAND, f"Message type 0x{frame.type:02x} is not a command.")
        except Refused as refusal:
            self._link.send(Msg.REFUSE, REFUSE_HEAD.pack(frame.seq, refusal.code) + refusal.reason.encode())
            return
        self._link.send(Msg.ACK, ACK_PAYLOAD.pack(frame.seq))

    @staticmethod
    def _expect_empty(frame: Frame) -> None:
        if frame.payload:
            raise Refused(Refusal.BAD_PAYLOAD, f"{Msg(frame.type).name} takes no payload.")

    def _arm(self, on: bool, now: float) -> None:
        if on:
            if self.faults:
                raise Refused(Refusal.FAULT_LATCHED, f"A fault is latched ({self._fault_names()}): RESET first.")
            if not self.armed:
                self.armed = True
                self._watchdog_from = now
                self._send_status(State.ARMED, StopReason.ARMED, "Armed.")
        elif self.armed or self._active():
            self._halt(now, StopReason.DISARMED, "Disarmed by the host.")

    def _persisting(self, now: float) -> int:
        """Fault bits whose cause is still present (RESET is refused for those)."""
        bits = self._device_persisting(now)
        if self._last_heartbeat_at is None or now - self._last_heartbeat_at > self.heartbeat_timeout_s:
            bits |= self.fault_bits["WATCHDOG"]
        return bits

    def _fault_names(self) -> str:
        names = [bit.name for bit in self.fault_bits if self.faults & bit]
        return ", ".join(names) or "none"

    def _persist_reason(self, bits: int) -> str:
        names = ", ".join(bit.name for bit in self.fault_bits if bits & bit)
        hint = " (send heartbeats first)" if bits & self.fault_bits["WATCHDOG"] else ""
        return f"Cannot reset: the cause of {names} is still present{hint}."

    # --- device hooks -------------------------------------------------------------------------------------------
    def _power_on(self, t: float) -> None:
        """The device is switched on at t (the sample clock starts)."""
        log.debug("%s emulator powered on at %.6f on %s", self.short_name, t, self.port)

    @abstractmethod
    def _sample(self, t: float) -> tuple:
        ...

    @abstractmethod
    def _telemetry(self, t0_us: int, samples: list[tuple]) -> bytes:
        ...

    @abstractmethod
    def _identity(self, now: float) -> dict[str, Any]:
        ...

    @abstractmethod
    def _set(self, param: int, value: float, now: float) -> None:
        ...

    @abstractmethod
    def _start(self, now: float) -> None:
        ...

    @abstractmethod
    def _halt(self, t: float, reason: StopReason, text: str) -> None:
        ...

    @abstractmethod
    def _active(self) -> bool:
        ...

    @abstractmethod
    def _device_persisting(self, now: float) -> int:
        ...

    @abstractmethod
    def _clear_causes(self, now: float) -> None:
        ...

    @abstractmethod
    def _snapshot(self, now: float) -> Any:
        ...

