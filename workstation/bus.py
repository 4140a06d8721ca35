"""The session bus: how sample blocks, commands and events travel from sources to consumers.

A *source* is a live driver, an emulated one, or a replay of a recording; they all publish the same three kinds of
item. A *sink* (recorder, safety monitor, plot buffers) receives them **in the publisher's thread**, synchronously,
so a sink must be fast: it enqueues, appends to a ring buffer, or evaluates a rule. That is what lets the safety
monitor react on the reader thread without waiting for the GUI, and what keeps replay feeding the same consumers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)
# Every event and device command, in the log file (workstation.logsetup); a handler only queues, never waits on disk.
events_log = logging.getLogger("workstation.events")

SEVERITIES = ("info", "low", "medium", "high")  # IEC 60601-1-8 alarm priorities above "info"


def now_s() -> float:
    """The host's monotonic clock, in seconds: the one time base of a session."""
    return time.monotonic()


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
        return json.dumps(self.details, sort_keys=True, default=str)


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
        return json.dumps(self.args, sort_keys=True, default=str)


class Sink(Protocol):
    """A consumer of a session's data. Called in the publisher's thread: never block."""

    def on_block(self, device: str, block: np.ndarray) -> None: ...

    def on_event(self, event: Event) -> None: ...

    def on_command(self, record: CommandRecord) -> None: ...


class BaseSink:
    """A sink that ignores everything: subclass it and override only what the consumer needs."""

    def on_block(self, device: str, block: np.ndarray) -> None:
        return None

    def on_event(self, event: Event) -> None:
        return None

    def on_command(self, record: CommandRecord) -> None:
        return None


class SessionBus:
    """Fans items out to sinks, in the calling thread, in subscription order.

    A sink that raises is logged and kept; one broken consumer never starves the others (the safety monitor is
    subscribed first so it sees every block before anything else does).
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
        events_log.log(logging.WARNING if event.severity == "high" else logging.INFO, "%s %s %s: %s %s",
                       event.kind, event.severity, event.source, event.message, event.details_json())

    def publish_command(self, record: CommandRecord) -> None:
        self._each("on_command", record)
        events_log.log(logging.INFO if record.result == "ack" else logging.WARNING, "command %s %s %s: %s",
                       record.device, record.command, record.args_json(), record.result)

    def event(self, kind: str, severity: str, source: str, message: str, **details: Any) -> Event:
        """Build an event stamped now and publish it."""
        ev = Event(now_s(), kind, severity, source, message, details)
        self.publish_event(ev)
        return ev
