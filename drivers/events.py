"""What a driver publishes and through what: events, command records, the sink and publisher protocols, the clock.

A driver imports nothing from the application (`workstation/`): it is given a *publisher* (anything with
`publish_block`, `publish_event`, `publish_command`; the application's `workstation.bus.SessionBus` is one) and
stamps what it publishes with `now_s`, the one time base of a session. A *sink* (recorder, safety monitor, plot
buffers) receives items **in the publisher's thread**, synchronously, so a sink must be fast: it enqueues, appends to
a ring buffer, or evaluates a rule. A third-party driver package depends on `drivers` only.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["SEVERITIES", "CommandRecord", "Event", "FanOut", "Publisher", "Sink", "detail_number", "now_s"]

log = logging.getLogger(__name__)

SEVERITIES = ("info", "low", "medium", "high")  # IEC 60601-1-8 alarm priorities above "info"


def now_s() -> float:
    """The host's monotonic clock, in seconds: the one time base of a session."""
    return time.monotonic()


def detail_number(details: Mapping[str, Any], key: str, default: float) -> float:
    """A number of an event's details (or a command's args) as read back from a file: `default` when it is missing
    or is not a finite number. A non-finite number is written as `null` (docs/recording-format.md, "Text and JSON"),
    and an older or foreign file may hold text where a number belongs; no reader may fail on either. Never raises."""
    value = details.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    number = float(value)
    return number if math.isfinite(number) else default


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: a state transition, an interlock trip, an alarm, a note, a fault."""

    t_host_s: float
    kind: str  # e.g. "interlock", "alarm", "state", "fault", "connection", "protocol", "note"
    severity: str  # one of SEVERITIES
    source: str  # device name ("light", "pen"), "session", "safety", "operator", ...
    message: str  # a sentence for people
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    def details_json(self) -> str:
        return strict_json(self.details)


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command sent to a device and what came back."""

    t_host_s: float  # when it was written to the port
    device: str
    command: str
    args: dict[str, Any]
    result: str  # "ack", "refused: <reason>", "not sent: <reason>", "timeout", "error: <reason>"
    t_reply_s: float = float("nan")  # when the answer arrived (nan if none)

    def args_json(self) -> str:
        return strict_json(self.args)


def strict_json(value: Any) -> str:
    """RFC 8259 JSON of `value` for a log line (sorted keys, anything else as its text): a NaN or ±inf number is
    written as the string "nan", "inf" or "-inf", never as JavaScript's NaN/Infinity, which strict parsers refuse (a
    needling event's area_dose_cap_mj_cm2 = inf: eleventh session's tester). RecursionError for a circular value."""
    return json.dumps(_named_non_finite(value), sort_keys=True, default=str, allow_nan=False)


def _named_non_finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, Mapping):
        return {k: _named_non_finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_named_non_finite(v) for v in value]
    return value


class Sink(Protocol):
    """A consumer of a session's data. Called in the publisher's thread: never block."""

    def on_block(self, device: str, block: np.ndarray) -> None: ...

    def on_event(self, event: Event) -> None: ...

    def on_command(self, record: CommandRecord) -> None: ...


@runtime_checkable
class Publisher(Protocol):
    """What a driver is given to publish through: sample blocks (structured arrays of the driver's BLOCK_DTYPE,
    one row per sample), events and command records. Called in the driver's threads; must not block."""

    def publish_block(self, device: str, block: np.ndarray) -> None: ...

    def publish_event(self, event: Event) -> None: ...

    def publish_command(self, record: CommandRecord) -> None: ...


class FanOut:
    """A publisher that fans items out to sinks, in the calling thread, in subscription order.

    A sink that raises is logged and kept; one broken consumer never starves the others (the safety monitor is
    subscribed first so it sees every block before anything else does). A driver given no publisher uses one of
    its own; the application's `SessionBus` is this plus the event log.
    """

    def __init__(self) -> None:
        self._sinks: tuple[Sink, ...] = ()
        self._lock = threading.Lock()
        self.sink_errors = 0

    def subscribe(self, sink: Sink, *, first: bool = False) -> None:
        with self._lock:
            self._sinks = (sink, *self._sinks) if first else (*self._sinks, sink)

    def unsubscribe(self, sink: Sink) -> None:
        with self._lock:
            self._sinks = tuple(s for s in self._sinks if s is not sink)

    def _each(self, method: str, *args: Any) -> None:
        for sink in self._sinks:  # a tuple swap on subscribe: iteration needs no lock
            try:
                getattr(sink, method)(*args)
            except Exception:  # noqa: BLE001 - a consumer bug must not stop the others
                self.sink_errors += 1
                log.exception("sink %r failed in %s", sink, method)

    def publish_block(self, device: str, block: np.ndarray) -> None:
        self._each("on_block", device, block)

    def publish_event(self, event: Event) -> None:
        self._each("on_event", event)

    def publish_command(self, record: CommandRecord) -> None:
        self._each("on_command", record)

    def event(self, kind: str, severity: str, source: str, message: str, **details: Any) -> Event:
        """Build an event stamped now and publish it."""
        ev = Event(now_s(), kind, severity, source, message, details)
        self.publish_event(ev)
        return ev
