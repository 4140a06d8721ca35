"""The command side of the protocol, as the device sees it: every command gets exactly one answer.

ACK (acked seq) or REFUSE (acked seq, Refusal code, a sentence); IDENTIFY gets IDENTITY instead of ACK; HEARTBEAT
gets nothing. Status changes a command causes (STATUS ARMED, STARTED, ...) are sent after its answer.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from drivers.protocol import (
    ACK_PAYLOAD,
    ARM_PAYLOAD,
    PROTOCOL_VERSION,
    REFUSE_HEAD,
    SET_PAYLOAD,
    Frame,
    Msg,
    Refusal,
    State,
    StopReason,
    identity_payload,
)
from drivers.silence import SilenceWatch

log = logging.getLogger(__name__)


class Refused(Exception):
    """Raised by a command handler: the command is answered with REFUSE(code, reason)."""

    def __init__(self, code: Refusal, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class CommandsMixin:
    """Command dispatch for `Emulator` (drivers/emulators/base.py, which provides the state, the link and the device
    hooks declared here). This module does not import the emulator base: the base imports it."""

    # state and link, set by Emulator.__init__
    kind: str
    short_name: str
    rate_hz: float
    samples_per_frame: int
    heartbeat_timeout_s: float
    fault_bits: Any  # the device's fault enum (IntFlag)
    faults: int
    armed: bool
    _link: Any  # drivers.emulators.link.PtyLink
    _commands: int
    _errors: int
    _heartbeats: int
    _deferred: list[bytes] | None
    _last_command_at: dict[str, float]
    _last_heartbeat_at: float | None
    _heard: SilenceWatch  # the watchdog's window: from the last heartbeat or ARM, as the receiver saw them

    # hooks of Emulator and its device subclass
    def _advance_to(self, now: float) -> float: ...
    def _send_status(self, state: State, reason: StopReason, text: str) -> None: ...
    def _identity(self, now: float) -> dict[str, Any]: ...
    def _set(self, param: int, value: float, now: float) -> None: ...
    def _start(self, now: float) -> None: ...
    def _halt(self, t: float, reason: StopReason, text: str) -> None: ...
    def _active(self) -> bool: ...
    def _device_persisting(self, now: float) -> int: ...

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
            self._heard.heard(now)
            return
        self._commands += 1
        self._deferred = []
        try:
            self._dispatch(frame, now)
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the host without its one answer
            self._errors += 1
            log.exception("%s emulator: error while serving %s", self.short_name, name)
            reason = f"Internal error while serving {name}: {exc}."
            self._link.send(Msg.REFUSE, REFUSE_HEAD.pack(frame.seq, Refusal.BAD_STATE) + reason.encode())
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
                self._link.send(Msg.IDENTITY, identity_payload(frame.seq, info))
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
                self._heard.heard(now)
                self._send_status(State.ARMED, StopReason.ARMED, "Armed.")
        elif self.armed or self._active():
            self._halt(now, StopReason.DISARMED, "Disarmed by the host.")

    def _persisting(self, now: float) -> int:
        """Fault bits whose cause is still present (RESET is refused for those)."""
        bits = self._device_persisting(now)
        if self._last_heartbeat_at is None or self._heard.lost(now, self.heartbeat_timeout_s):
            bits |= self.fault_bits["WATCHDOG"]
        return bits

    def _fault_names(self) -> str:
        names = [bit.name for bit in self.fault_bits if self.faults & bit]
        return ", ".join(names) or "none"

    def _persist_reason(self, bits: int) -> str:
        names = ", ".join(bit.name for bit in self.fault_bits if bits & bit)
        hint = " (send heartbeats first)" if bits & self.fault_bits["WATCHDOG"] else ""
        return f"Cannot reset: the cause of {names} is still present{hint}."
