"""The session bus: how sample blocks, commands and events travel from sources to consumers.

A *source* is a live driver, an emulated one, or a replay of a recording; they all publish the same three kinds of
item. A *sink* (recorder, safety monitor, plot buffers) receives them **in the publisher's thread**, synchronously,
so a sink must be fast: it enqueues, appends to a ring buffer, or evaluates a rule. That is what lets the safety
monitor react on the reader thread without waiting for the GUI, and what keeps replay feeding the same consumers.
"""

from __future__ import annotations

import logging

import numpy as np

# The items, the protocols and the clock live with the drivers (which must not import the application); they are
# re-exported here so the application keeps one name for each.
from drivers.events import SEVERITIES, CommandRecord, Event, FanOut, Publisher, Sink, detail_number, now_s

__all__ = ["SEVERITIES", "BaseSink", "CommandRecord", "Event", "Publisher", "SessionBus", "Sink", "detail_number",
           "now_s"]

log = logging.getLogger(__name__)
# Every event and device command, in the log file (workstation.logsetup); a handler only queues, never waits on disk.
events_log = logging.getLogger("workstation.events")


class BaseSink:
    """A sink that ignores everything: subclass it and override only what the consumer needs."""

    def on_block(self, device: str, block: np.ndarray) -> None:
        return None

    def on_event(self, event: Event) -> None:
        return None

    def on_command(self, record: CommandRecord) -> None:
        return None


class SessionBus(FanOut):
    """Fans items out to sinks, in the calling thread, in subscription order (drivers.events.FanOut), and writes
    every event and command to the event log.

    A sink that raises is logged and kept; one broken consumer never starves the others (the safety monitor is
    subscribed first so it sees every block before anything else does).
    """

    def publish_event(self, event: Event) -> None:
        super().publish_event(event)
        events_log.log(logging.WARNING if event.severity == "high" else logging.INFO, "%s %s %s: %s %s",
                       event.kind, event.severity, event.source, event.message, _shown(event.details_json,
                                                                                     event.details))

    def publish_command(self, record: CommandRecord) -> None:
        super().publish_command(record)
        events_log.log(logging.INFO if record.result == "ack" else logging.WARNING, "command %s %s %s: %s",
                       record.device, record.command, _shown(record.args_json, record.args), record.result)


def _shown(as_json, value: object) -> str:
    """The JSON of an event's details or a command's args for the log line, or their repr when there is none (a
    circular structure, a tuple key): the line is written in the publisher's thread and must never raise there."""
    try:
        return as_json()
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - nested too deep even for repr (a fresh tester of issue 12), or a broken __repr__
        return f"(a {type(value).__name__} that cannot be shown)"

