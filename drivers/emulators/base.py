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

from drivers.emulators.commands import CommandsMixin
from drivers.emulators.link import LinkStats, PtyLink
from drivers.protocol import (
    FAULT_HEAD,
    STATUS_HEAD,
    FrameDecoder,
    Msg,
    State,
    StopReason,
)
from drivers.silence import SilenceWatch

log = logging.getLogger(__name__)


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


class Emulator(CommandsMixin, ABC):
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
        # The watchdog's window starts at the later of the last heartbeat and the last ARM, and it judges the silence
        # its receiver saw (drivers/silence.py): a real device's UART hears every byte when it arrives, but this
        # receiver is a thread of a process that can be held up (with the host's threads, when they share it);
        # heartbeats waiting unread in the pty meanwhile are not the host's silence.
        self._heard = SilenceWatch(self._t_start)
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
        """Plug the cable back: a fresh pty behind the same port path (pulled first if it was still plugged)."""
        if self._link.plugged:
            self.unplug()
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
                data = self._link.read(self._read_timeout_s())
                with self._lock:
                    for frame in self._decoder.feed(data) if data else ():
                        self._handle(frame)  # answers REFUSE itself if serving the command fails
                    self._heard.looked(time.monotonic())  # everything the host wrote until now is handled
            except Exception:  # noqa: BLE001 - log, count and keep serving
                self._errors += 1
                log.exception("%s emulator: error while serving a command", self.short_name)
                time.sleep(0.01)

    def _read_timeout_s(self) -> float:
        """At most 50 ms; while the watchdog runs, the receiver also looks just after its deadline, so that a host
        that went silent is seen as soon as a UART would have seen it."""
        if not self._supervised():
            return 0.05
        due = self._heard.heard_s + self.heartbeat_timeout_s + self.dt_s - time.monotonic()
        return min(0.05, max(0.001, due))

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
                    late_s = now - t if now - t > 2 * self.tick_s else 0.0  # a held-up model catching up
                    self._link.send(Msg.TELEMETRY, self._telemetry(t0_us, self._pending), droppable=True,
                                    late_s=late_s)
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
        elif bit == getattr(self.fault_bits, "BACKUP_TIME", None):
            reason = StopReason.BACKUP_TIME
        else:
            reason = StopReason.FAULT
        self._halt(t, reason, text)

    def _supervised(self) -> bool:
        return self.armed or self._active()

    def _check_watchdog(self, t: float) -> None:
        if not self._supervised():
            return
        if self._heard.lost(t, self.heartbeat_timeout_s):
            ms = self.heartbeat_timeout_s * 1000
            self._trip(self.fault_bits["WATCHDOG"], f"No heartbeat from the host for {ms:.0f} ms: stopped.", t)

    # --- device hooks -------------------------------------------------------------------------------------------
    def _power_on(self, t: float) -> None:
        """The device is switched on at t (the sample clock starts)."""
        log.debug("%s emulator powered on at %.6f on %s", self.short_name, t, self.port)

    @abstractmethod
    def _sample(self, t: float) -> tuple:
        """Step the physics to the sample at monotonic time t and return its telemetry row (trips go here)."""

    @abstractmethod
    def _telemetry(self, t0_us: int, samples: list[tuple]) -> bytes:
        """The TELEMETRY payload (header + samples) for one frame."""

    @abstractmethod
    def _identity(self, now: float) -> dict[str, Any]:
        """Device-specific IDENTITY fields (model, serial_number, firmware, ...)."""

    @abstractmethod
    def _set(self, param: int, value: float, now: float) -> None:
        """Apply SET or raise Refused."""

    @abstractmethod
    def _start(self, now: float) -> None:
        """START passed the common checks (no fault, armed, idle): check the device's own, then begin."""

    @abstractmethod
    def _halt(self, t: float, reason: StopReason, text: str) -> None:
        """Disarm and make safe from t; send STATUS(IDLE, reason) once physically safe."""

    @abstractmethod
    def _active(self) -> bool:
        """Emitting or needling, or not yet physically safe after a stop."""

    @abstractmethod
    def _device_persisting(self, now: float) -> int:
        """Device fault bits whose cause is still present."""

    @abstractmethod
    def _clear_causes(self, now: float) -> None:
        """Remove every injected fault cause."""

    @abstractmethod
    def _snapshot(self, now: float) -> Any:
        """The device's state dataclass (built on `_base_fields`)."""

