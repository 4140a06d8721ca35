"""Every frame a device sends, handled so that none can end the reader: decoded, checked, then published.

A mixin of `SerialDevice` (drivers/base.py), which owns the link (drivers/link.py) and the state used here. Whatever a
CRC-valid frame holds, what cannot be decoded or makes no sense is a rejected frame with its reason (counted, logged,
an event at most once a second) and the stream goes on. Telemetry is published only after the device was identified
as one this driver drives, on a device clock that moves forward, and sample by sample within each channel's
declared plausibility (`drivers/plausibility.py`); implausible samples never reach the bus.
"""

from __future__ import annotations

import logging

import numpy as np

from drivers import protocol as p
from drivers.codes import DisconnectReason, LinkEvent
from drivers.events import CommandRecord, now_s
from drivers.link import TELEMETRY_LOST_S
from drivers.plausibility import REBASE_AFTER_FRAMES, Violation
from drivers.silence import BLIND_GAP_S, STALL_DETAIL
from drivers.types import Identity, kind_words

log = logging.getLogger(__name__)

NOTICE_INTERVAL_S = 1.0  # rejected frames / implausible samples of an idle device: at most one event per second


_MIN_PAYLOAD = {p.Msg.FAULT: p.FAULT_HEAD.size, p.Msg.STATUS: p.STATUS_HEAD.size}


class FrameIntake:
    """The device → host half of a driver."""

    def _handle_contained(self, frame: p.Frame, t_arrival: float) -> None:
        """Handle one frame; whatever it holds, what makes no sense is a rejected frame and the stream goes on."""
        try:
            self._handle(frame, t_arrival)
        except Exception as exc:  # noqa: BLE001 - no frame may end the reader
            self._reject(frame, f"{type(exc).__name__}: {exc}" if not isinstance(exc, p.FrameError) else str(exc))

    def _reject(self, frame: p.Frame, why: str) -> None:
        self.counters.rejected_frames += 1
        self.last_rejection = f"{_enum_name(p.Msg, frame.type)} seq {frame.seq}: {why}"
        if self._notice_due("rejected"):
            log.warning("%s: rejected frame: %s", self.name, self.last_rejection)
            self._event("bad_frame", "low", f"{self.name}: a frame was rejected ({self.last_rejection})",
                        reason=why, message_type=int(frame.type), rejected_frames=self.counters.rejected_frames)

    def _handle(self, frame: p.Frame, t_arrival: float) -> None:
        if self._expected_seq is not None and frame.seq != self._expected_seq:
            ahead = (frame.seq - self._expected_seq) & 0xFFFF
            if ahead >= 0x8000:  # repeated or behind: a device bug, a replayed frame, or a device that restarted
                self.counters.seq_repeats += 1
                if self._seq_restarted(frame.seq):
                    self._event_at(t_arrival, "connection", "medium", f"{self.name}: the device's sequence numbers "
                                   f"restarted (at {frame.seq}, {self._expected_seq} expected); followed again after "
                                   f"{REBASE_AFTER_FRAMES} consecutive frames", seq=frame.seq,
                                   link=LinkEvent.SEQUENCE.value)
                    self._expected_seq = (frame.seq + 1) & 0xFFFF
                elif frame.type == p.Msg.TELEMETRY:
                    raise p.FrameError(f"sequence {frame.seq} repeats or goes back (expected {self._expected_seq})")
            else:
                self.counters.seq_gaps += 1
                self.counters.lost_frames += ahead
                self._expected_seq = (frame.seq + 1) & 0xFFFF
        else:
            self._expected_seq = (frame.seq + 1) & 0xFFFF
        if self._expected_seq == (frame.seq + 1) & 0xFFFF:
            self._seq_candidate = None  # in sequence: no restart under way
        t = frame.type
        if t == p.Msg.TELEMETRY:
            self._handle_telemetry(frame, t_arrival)
        elif t in (p.Msg.ACK, p.Msg.REFUSE, p.Msg.IDENTITY):
            self._handle_reply(frame, t_arrival)
        elif t in _MIN_PAYLOAD and len(frame.payload) < _MIN_PAYLOAD[t]:
            raise p.FrameError(f"{_enum_name(p.Msg, t)} needs at least {_MIN_PAYLOAD[t]} payload bytes")
        elif t == p.Msg.FAULT:
            bits, new = p.FAULT_HEAD.unpack_from(frame.payload)
            names = self.fault_names(new)
            self._event_at(t_arrival,
                "fault", "high", f"{self.name} fault: {', '.join(names) or 'unknown'}: "
                f"{p.text(frame.payload[p.FAULT_HEAD.size:])}",
                fault_bits=bits, new_bits=new, faults=names, **p.raw_if_unclean(frame.payload[p.FAULT_HEAD.size:]),
            )
        elif t == p.Msg.STATUS:
            state, reason = p.STATUS_HEAD.unpack_from(frame.payload)
            state_name, reason_name = _enum_name(p.State, state), _enum_name(p.StopReason, reason)
            words = p.text(frame.payload[p.STATUS_HEAD.size:]) or f"state {state_name}, reason {reason_name}"
            self._event_at(t_arrival, "device_state", "info", f"{self.name}: {words}",
                           state=state_name, reason=reason_name, **p.raw_if_unclean(frame.payload[p.STATUS_HEAD.size:]))
        else:
            raise p.FrameError(f"message type 0x{t:02x} is not one a device sends")

    def _seq_restarted(self, seq: int) -> bool:
        """A backward number that is the REBASE_AFTER_FRAMES-th of consecutive numbers (a device that rebooted with
        the port open), as `DeviceClock` follows a restarted clock; a lone repeat or replay never re-bases."""
        cand = getattr(self, "_seq_candidate", None)
        run = cand[1] + 1 if cand is not None and seq == (cand[0] + 1) & 0xFFFF else 1
        self._seq_candidate = (seq, run)
        if run >= REBASE_AFTER_FRAMES:
            self._seq_candidate = None
            return True
        return False

    def _handle_telemetry(self, frame: p.Frame, t_arrival: float) -> None:
        block = self.decode_telemetry(frame.payload, frame.seq, t_arrival)  # FrameError: n = 0, clock overflow...
        if not self._ready:
            return  # not yet identified: the samples may be another device's (counted as frames, not published)
        t_dev = block["t_device_us"]
        # Reading this frame is a look: a stretch the reader was held up before it is blind before the gap is judged.
        self._samples_seen.looked(t_arrival)
        prev_us = self._device_clock.last_us
        accepted, message = self._device_clock.check(int(t_dev[0]), int(t_dev[-1]), t_arrival)
        if not accepted:
            raise p.FrameError(message)
        if message:
            self._plausibility.reset()
            self._event_at(t_arrival, "connection", "medium", f"{self.name}: {message}", link=LinkEvent.SEQUENCE.value)
        elif prev_us is not None and not self.telemetry_lost:
            # The telemetry watchdog on the device clock: samples must cover the device's time, not frames arrive.
            gap_s = (int(t_dev[0]) - prev_us) / 1e6
            # Every time while the device is active (an interlock); while idle, at most once a second (not a flood).
            if gap_s > TELEMETRY_LOST_S and (self._plausibility.last_active or self._notice_due("device_gap")):
                # the host-time span the missing samples cover ends at this frame's arrival
                stall_s = self._samples_seen.stall_within(t_arrival - gap_s - BLIND_GAP_S, t_arrival)
                words, details = _gap_words(self.name, gap_s, stall_s)
                self._event_at(t_arrival, "connection", "high", words, link=LinkEvent.TELEMETRY_LOST.value, **details)
        ok, violations = self._plausibility.check(block)
        if violations:
            self._report_implausible(block, ok, violations, t_arrival)
            block = block[ok]
            if not len(block):
                return
        # Fresh telemetry is new samples on the device clock, not frames: only accepted samples count.
        self.last_frame_s = t_arrival
        self._samples_seen.heard(t_arrival)
        if self.telemetry_lost:
            self.telemetry_lost = False
            self._event("connection", "info", f"{self.name} telemetry resumed", link=LinkEvent.TELEMETRY_RESUMED.value)
        self.counters.samples += len(block)
        self.last_block = block
        self.bus.publish_block(self.name, block)

    def _report_implausible(self, block: np.ndarray, ok: np.ndarray, violations: list[Violation],
                            t_arrival: float) -> None:
        """Count, and publish an `implausible` event: every time while active (an interlock), else once a second."""
        dropped = int((~ok).sum())
        self.counters.implausible_samples += dropped
        active = bool(block[self.active_channel].any()) or self._plausibility.last_active
        if not (active or self._notice_due("implausible")):
            return
        v = violations[0]
        text = "; ".join(f"{x.channel} = {x.value:g} {x.unit} ({x.why})" for x in violations)
        self._event_at(t_arrival, "implausible", "high" if active else "medium",
                       f"{self.name}: {dropped} implausible sample(s) rejected: {text}",
                       channel=v.channel, value=v.value, unit=v.unit, why=v.why, active=active,
                       samples_rejected=dropped, channels=[x.channel for x in violations])

    def _handle_reply(self, frame: p.Frame, t_arrival: float) -> None:
        t = frame.type
        minimum = p.REFUSE_HEAD.size if t == p.Msg.REFUSE else p.ACK_PAYLOAD.size
        if len(frame.payload) < minimum:
            raise p.FrameError(f"{_enum_name(p.Msg, t)} needs at least {minimum} payload bytes")
        (acked,) = p.ACK_PAYLOAD.unpack_from(frame.payload)
        pending = self.link.take_pending(acked, identity=t == p.Msg.IDENTITY)
        if pending is None:  # a late answer to a command that timed out, or none: nothing waits for it
            log.debug("%s: %s for sequence %d, which no command waits for", self.name, _enum_name(p.Msg, t), acked)
            return
        if t == p.Msg.IDENTITY:
            self._take_identity(frame)
        pending.reply = frame
        args = pending.args
        if t == p.Msg.ACK or t == p.Msg.IDENTITY:
            result = "ack" if not (t == p.Msg.IDENTITY and self._refusal) else f"refused by the host: {self._refusal}"
        else:
            reason = frame.payload[p.REFUSE_HEAD.size :]
            words, why = p.text(reason), p.refusal_words(frame.payload[2])
            result = f"refused: {words} ({why})" if words else f"refused: {why}"
            # the device's own bytes, when cleaning its words changed them, go to the recording with the command (as
            # a FAULT's or a STATUS's do in their event's details: one key, raw_if_unclean)
            args = {**args, **p.raw_if_unclean(reason)}
        self.bus.publish_command(
            CommandRecord(pending.t_sent_s, self.name, pending.command, args, result, t_arrival)
        )
        pending.done.set()

    def _take_identity(self, frame: p.Frame) -> None:
        """Parse and check an IDENTITY; a device this driver does not drive is refused and its port closed."""
        try:
            ident = Identity.from_dict(p.parse_identity(frame.payload))
        except p.FrameError as exc:
            self.counters.rejected_frames += 1
            self.unreadable_identity = str(exc)
            self.last_rejection = f"unreadable identity: {exc}"
            log.warning("%s: unreadable identity: %s", self.name, exc)
            return
        problem = self.INFO.identity_problem(ident)
        if not problem:
            self.identity = ident
            self._ready = True
            return
        self.refused_identity = ident
        self._refusal = (
            f"The device on {self.port} is not {kind_words(self.INFO.kind)} this program drives: {problem}. It "
            "answered as "
            f"{ident.model!r} s/n {ident.serial_number}, kind {ident.extra.get('kind')!r}, protocol "
            f"{ident.protocol_text()}. Check which device is plugged into which port."
        )
        # and no reconnection to it (the link holds until the next connect)
        self._lost_connection(f"refused: {self._refusal}", DisconnectReason.REFUSED, forced=True)

    def _notice_due(self, what: str) -> bool:
        t = now_s()
        if t - self._last_notice_s.get(what, -1e9) < NOTICE_INTERVAL_S:
            return False
        self._last_notice_s[what] = t
        return True


def _enum_name(enum: type, value: int) -> str:
    """The member's name, or `unknown (200)` for a value the protocol does not define."""
    try:
        return enum(value).name
    except ValueError:
        return f"unknown ({value})"


def _gap_words(name: str, gap_s: float, stall_s: float) -> tuple[str, dict[str, float]]:
    """The sentence and details of samples missing between frames (`gap_s` of device time, s). When the workstation
    could not read for part of that time (a stall of `stall_s`, s: `SilenceWatch.stall_within` that span), the
    device's frames were lost on a line nobody read, and the sentence says so rather than blaming the device
    (drivers.silence.STALL_DETAIL)."""
    details = {"device_gap_s": round(gap_s, 4)}
    if stall_s <= 0.0:
        return f"{name}: no telemetry for {gap_s * 1000:.0f} ms of device time (samples missing between frames)", details
    details[STALL_DETAIL] = round(stall_s, 4)
    return (f"{name}: {gap_s * 1000:.0f} ms of device time missing between frames: the workstation could not read "
            f"the line for {stall_s:.1f} s (a stall), so the frames of that time were lost"), details
