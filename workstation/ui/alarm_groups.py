"""One grouping of alarm signals into alarm conditions (IEC 60601-1-8 §6.1: one condition per cause, its related
signals listed under it), used by the live alarm panel, the after-session summary, the PDF report and replay.

Rules (one place): a signal joins the condition of the same device whose last signal is at most GROUP_WINDOW_S
earlier; a device's reconnection ("connected again; it was made safe") is always a related signal of that device's
latest condition, never a condition of its own. The operator's STOP is an operator action, not an alarm: its
per-device E-stop signals within OPERATOR_PRESS_S are one action line. No Qt here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivers.codes import LinkEvent
from workstation.ui.wording import SEVERITY_LABELS, event_sentence, is_operator_stop
from workstation.words import seconds

PRIORITY = {"high": 0, "medium": 1, "low": 2}
GROUP_WINDOW_S = 2.0  # signals of one device this close together share a cause
OPERATOR_PRESS_S = 1.0  # the E-stops of one STOP press (one per device) arrive within this
_HEADLINE_RANK = {"interlock": 0, "fault": 1, "connection": 2}


def device_key(event: Any) -> str:
    return str(event.details.get("device") or event.source)


def is_alarm(event: Any) -> bool:
    """A signal above info that is not an acknowledgement and not the operator's own STOP."""
    return event.severity in PRIORITY and event.kind != "alarm_ack" and not is_operator_stop(event)


def is_reconnection(event: Any) -> bool:
    """A device's link came back (its `connection` event's code, drivers/codes.py)."""
    return event.kind == "connection" and event.details.get("link") == LinkEvent.RECONNECTED


def same_cause(head: Any, last_signal_s: float, event: Any, t_s: float) -> bool:
    """Whether `event`, arriving at `t_s`, is a signal of the condition headed by `head` (last signal at
    `last_signal_s`): same device, and close in time or the device's reconnection."""
    if device_key(event) != device_key(head):
        return False
    return is_reconnection(event) or t_s - last_signal_s <= GROUP_WINDOW_S


def heads_before(new: Any, head: Any) -> bool:
    """Whether `new` is a more telling headline than the condition's present `head` (interlock, fault, connection)."""
    return _HEADLINE_RANK.get(new.kind, 3) < _HEADLINE_RANK.get(head.kind, 3)


@dataclass
class Condition:
    """One alarm condition of a recording or a session: its headline signal and the related ones."""

    event: Any
    related: list[Any] = field(default_factory=list)
    last_signal_s: float = 0.0

    @property
    def severity(self) -> str:
        return min((self.event, *self.related), key=lambda e: PRIORITY[e.severity]).severity

    def join(self, event: Any, t_s: float) -> None:
        self.last_signal_s = t_s
        if heads_before(event, self.event):
            self.related.insert(0, self.event)
            self.event = event
        else:
            self.related.append(event)


@dataclass
class Grouped:
    """`roles[i]` for events[i]: 'alarm' (a new condition), 'related' (a signal of an earlier condition), 'action'
    (an operator STOP), 'action-related' (the same press on another device), '' (not an alarm)."""

    conditions: list[Condition]
    actions: list[Any]
    roles: list[str]


def group_events(events: list[Any]) -> Grouped:
    """Group a session's events (in time order, times `t_host_s`) into conditions and operator actions."""
    conditions: list[Condition] = []
    actions: list[Any] = []
    roles: list[str] = []
    for e in events:
        t = float(e.t_host_s)
        if is_operator_stop(e):
            if actions and t - float(actions[-1].t_host_s) < OPERATOR_PRESS_S:
                roles.append("action-related")
            else:
                actions.append(e)
                roles.append("action")
            continue
        if not is_alarm(e):
            roles.append("")
            continue
        joined = next((c for c in reversed(conditions) if same_cause(c.event, c.last_signal_s, e, t)), None)
        if joined is not None:
            joined.join(e, t)
            roles.append("related")
        else:
            conditions.append(Condition(e, last_signal_s=t))
            roles.append("alarm")
    return Grouped(conditions, actions, roles)


def role_label(event: Any, role: str) -> str:
    """The mark a row of an event list starts with: its severity (HIGH, MEDIUM …) or ACTION for an operator STOP; a
    signal of an earlier condition (role 'related' or 'action-related') is marked with '·' before it, so its own
    severity still shows (a skin-contact interlock joined to a lost-telemetry trip is HIGH too)."""
    mark = "ACTION" if role in ("action", "action-related") else SEVERITY_LABELS.get(event.severity, event.severity)
    return f"· {mark}" if role in ("related", "action-related") else mark


def operator_stop_line(event: Any) -> str:
    return f"Operator STOP ({event.details.get('source', 'operator')}): both devices stopped"


def condition_lines(events: list[Any], t0_s: float | None = None) -> list[str]:
    """The conditions and operator actions in words, in time order, one line each (related signals after the
    headline); with `t0_s`, each line starts with its session time."""
    g = group_events(events)
    items = [(min(float(e.t_host_s) for e in (c.event, *c.related)), c) for c in g.conditions] + [(float(a.t_host_s), a) for a in g.actions]
    lines = []
    for t, item in sorted(items, key=lambda x: x[0]):
        at = f"{seconds(t - t0_s, 1)}: " if t0_s is not None else ""  # a time not finite: "unknown …" in words
        if isinstance(item, Condition):
            with_ = "; ".join(event_sentence(e).rstrip(".") for e in item.related)
            lines.append(f"{at}{SEVERITY_LABELS[item.severity]} — {event_sentence(item.event)}"
                         + (f" (with: {with_})" if with_ else ""))
        else:
            lines.append(f"{at}ACTION — {operator_stop_line(item)}")
    return lines
