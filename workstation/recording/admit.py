"""What the recorder's sink takes from the bus, made so that the writer thread can always write it.

Called in the publisher's thread (SessionRecorder.on_event / on_command), before the item is queued:

- a row without a usable host time (not a finite number after the clock's origin) is stamped now, the time it came
  with kept as `t_host_s_given` in its details or args (docs/recording-format.md, "Text and JSON");
- a row the writer could not convert (details or args that are not a mapping, a circular structure, a reply time
  that is not a number, ...) is written in a form it can, its texts as text, its details or args replaced by
  `not_encodable` (why) and `given_repr` (what came, as Python shows it). Converted here first, so one such row can
  neither vanish from the file (a sink that raises is only logged by the bus) nor fail the writer's whole batch
  (which stopped the recording, and with it the session).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from workstation.bus import CommandRecord, Event, now_s
from workstation.recording import format as fmt
from workstation.recording.clean import T_GIVEN_KEY, set_aside
from workstation.recording.slabs import command_row, event_row

log = logging.getLogger(__name__)

NOT_ENCODABLE_KEY = "not_encodable"
GIVEN_REPR_KEY = "given_repr"
_REPR_MAX = 2000


def valid_time(t: object) -> float:
    """A row's host time, or now if it came without one (not a finite number after the clock's origin)."""
    try:
        v = float(t)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return now_s()
    return v if math.isfinite(v) and v > 0.0 else now_s()


def _stamped(t_given: object, details: Any) -> tuple[float, Any]:
    t = valid_time(t_given)
    out = set_aside(details, (T_GIVEN_KEY,))  # the name is the recorder's note alone
    if t != t_given:
        out = {**out, T_GIVEN_KEY: t_given}
    return t, out


def event_in(event: Event) -> Event:
    """`event` as the file takes it (see the module's text)."""
    try:
        t, details = _stamped(event.t_host_s, event.details)
        if t != event.t_host_s or details is not event.details:
            event = Event(t, event.kind, event.severity, event.source, event.message, details)
        np.array([event_row(event)], dtype=fmt.EVENT_DTYPE)  # the writer's own conversion, tried now
        return event
    except Exception as exc:  # noqa: BLE001 - any row that cannot be written is replaced, never lost
        log.warning("an event from %s could not be recorded as given (%s); recorded with a note", _text(event.source),
                    exc)
        severity = event.severity if isinstance(event.severity, str) else "info"
        return Event(valid_time(event.t_host_s), _text(event.kind), severity, _text(event.source),
                     _text(event.message), _note(exc, event.details, event.t_host_s))


def command_in(record: CommandRecord) -> CommandRecord:
    """`record` as the file takes it (see the module's text)."""
    try:
        t, args = _stamped(record.t_host_s, record.args)
        if t != record.t_host_s or args is not record.args:
            record = CommandRecord(t, record.device, record.command, args, record.result, record.t_reply_s)
        np.array([command_row(record)], dtype=fmt.COMMAND_DTYPE)
        return record
    except Exception as exc:  # noqa: BLE001
        log.warning("a command record of %s could not be recorded as given (%s); recorded with a note",
                    _text(record.device), exc)
        try:
            t_reply = float(record.t_reply_s)
        except (TypeError, ValueError, OverflowError):
            t_reply = float("nan")
        return CommandRecord(valid_time(record.t_host_s), _text(record.device), _text(record.command),
                             _note(exc, record.args, record.t_host_s), _text(record.result), t_reply)


def _note(exc: BaseException, given: object, t_given: object) -> dict[str, Any]:
    note = {NOT_ENCODABLE_KEY: f"{type(exc).__name__}: {_text(exc)}", GIVEN_REPR_KEY: _text(given, repr)}
    if valid_time(t_given) != t_given:
        note[T_GIVEN_KEY] = _text(t_given, repr)
    return note


def _text(value: object, how=str) -> str:
    try:
        text = value if isinstance(value, str) else how(value)
    except Exception as exc:  # noqa: BLE001 - even its str() may fail
        text = f"<{type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= _REPR_MAX else text[:_REPR_MAX] + "…"
