"""Finding 7 of the fresh tester on issue 15: one grouping of alarm signals (alarm_groups) for the panel, the summary,
the PDF and replay; a reconnection is a related signal of its device's condition; an operator STOP is one action."""

from __future__ import annotations

from drivers.codes import DisconnectReason, LinkEvent
from workstation.bus import Event
from workstation.ui.alarm_groups import GROUP_WINDOW_S, condition_lines, group_events
from workstation.ui.alarms import AlarmList


def ev(t, kind, severity, origin, message, **details):
    return Event(t, kind, severity, origin, message, details)


UNPLUG = [
    ev(10.0, "connection", "high", "pen", "pen disconnected: device reports readiness to read but returned no data",
       link=LinkEvent.DISCONNECTED, disconnect=DisconnectReason.READ_FAILED),
    ev(10.1, "interlock", "high", "safety", "INTERLOCK disconnected on pen: gone", device="pen",
       interlock="disconnected"),
    ev(10.3, "connection", "high", "pen", "no telemetry from pen for 250 ms", link=LinkEvent.TELEMETRY_LOST),
    ev(40.0, "connection", "medium", "pen", "pen reconnected; made safe", link=LinkEvent.RECONNECTED),  # long after: still the same cause
    ev(50.0, "interlock", "high", "safety", "INTERLOCK estop on light", device="light", interlock="estop",
       source="STOP button"),
    ev(50.01, "interlock", "high", "safety", "INTERLOCK estop on pen", device="pen", interlock="estop",
       source="STOP button"),
    ev(51.0, "state", "info", "session", "treating -> paused"),
]


def test_one_condition_per_cause_and_one_action_per_stop():
    g = group_events(UNPLUG)
    assert g.roles == ["alarm", "related", "related", "related", "action", "action-related", ""]
    assert len(g.conditions) == 1 and g.conditions[0].event.kind == "interlock"  # the most telling headline
    assert len(g.actions) == 1
    lines = condition_lines(UNPLUG, t0_s=0.0)
    assert len(lines) == 2 and lines[0].startswith("10.0 s: HIGH") and "connected again" in lines[0]
    assert lines[1] == "50.0 s: ACTION — Operator STOP (STOP button): both devices stopped"
    text = " ".join(lines)
    assert "readiness" not in text and "estop" not in text and "_" not in text


def test_the_panel_groups_alike(qtbot):
    panel = AlarmList()
    qtbot.addWidget(panel)
    for e in UNPLUG:
        panel.add(e)
    assert len(panel.alarms) == 1 and len(panel.alarms[0].related) == 3 and len(panel.actions) == 1
    assert panel.seen == UNPLUG[:-1]  # what the after-session summary groups


def test_a_later_signal_is_a_new_condition():
    later = [UNPLUG[0], ev(10.0 + GROUP_WINDOW_S + 1, "connection", "high", "pen", "pen disconnected: again",
                              link=LinkEvent.DISCONNECTED)]
    assert group_events(later).roles == ["alarm", "alarm"]


def test_every_row_shows_its_own_severity_a_related_signal_marked_as_such():
    """Fresh tester of issue 12: replay listed a skin-contact interlock joined to an earlier condition as '·' alone,
    hiding that it was HIGH. Every row of the replay list and of the alarm panel carries its severity."""
    from workstation.ui.alarm_groups import role_label

    g = group_events(UNPLUG)
    labels = [role_label(e, r) for e, r in zip(UNPLUG, g.roles, strict=True)]
    assert labels == ["HIGH", "· HIGH", "· HIGH", "· MEDIUM", "ACTION", "· ACTION", "INFO"]
    contact = ev(10.2, "interlock", "high", "safety", "INTERLOCK skin_contact on pen: lifted", device="pen",
                 interlock="skin_contact")
    events = [*UNPLUG[:2], contact]
    roles = group_events(events).roles
    assert roles[2] == "related" and role_label(contact, roles[2]) == "· HIGH"


def test_the_panel_shows_each_related_signal_with_its_severity(qtbot):
    panel = AlarmList()
    qtbot.addWidget(panel)
    for e in UNPLUG[:4]:
        panel.add(e)
    lines = panel.alarms[0].text().splitlines()
    assert lines[0].startswith("HIGH") and len(lines) == 4
    assert [line.split()[:2] for line in lines[1:]] == [["·", "HIGH"], ["·", "HIGH"], ["·", "MEDIUM"]]


def test_a_trip_after_an_interlock_reset_is_a_new_condition_raised_again(qtbot):
    """A fresh tester (issue 12, nineteenth session): contact lost, reset, then the light's telemetry stalled 120 ms
    later. The new trip joined the old, reset condition as a related line, so no alarm was raised and no message
    said it, while the banner still said "Interlocks reset: Skin contact. Resume when ready."."""
    panel = AlarmList()
    qtbot.addWidget(panel)
    raised = []
    panel.raised.connect(raised.append)
    first = panel.add(ev(10.0, "interlock", "high", "safety", "INTERLOCK contact_lost on light", device="light",
                         interlock="contact_lost"))
    panel.add(ev(10.5, "interlock_reset", "info", "operator", "interlocks reset by op: contact_lost",
                 who="op", cleared=["contact_lost"]))
    again = panel.add(ev(10.6, "interlock", "high", "safety", "INTERLOCK telemetry_lost on light", device="light",
                         interlock="telemetry_lost"))
    assert again is not first and len(panel.alarms) == 2 and raised == [first, again]
    assert again.related == [] and first.related == []
