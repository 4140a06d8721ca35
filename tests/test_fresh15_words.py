"""Finding 8 of the fresh tester on issue 15: no raw identifier, file name, backtick or device path reaches the
screen or the PDF (wording.scrub, event_sentence, protocol_title, the trainer's fault list)."""

from __future__ import annotations

import pytest

from workstation import progname
from workstation.bus import Event
from workstation.ui.trainer_panel import TrainerPanel
from workstation.ui.wording import event_sentence, protocol_title, region_name, scrub


@pytest.mark.parametrize("raw,shown", [
    ("interlock contact_lost on light", "skin contact interlock on the UV light"),
    ("interlock estop on light; interlock estop on pen",
     "e-stop interlock on the UV light; e-stop interlock on the needling pen"),
    ("interlock disconnected on light", "connection interlock on the UV light"),
    ("Area a is not part of this plan (modality: none)", "(no treatment today)"),
    ("see CLINICAL.md", "the team's clinical guide"),
    ("run `python main.py devices check`", "“cicatrix devices check”"),
    ("see `trail show`", "“trail show”"),
    ("The light (its port) is disconnected", "The light is disconnected"),
    ("Lamp at 50.0 °C, over the 45 °C limit.", "over the lamp's own 45 °C limit"),
    ("lamp at 43.1 °C, above 42 °C", "above the workstation's 42 °C limit"),
])
def test_scrub_words(raw, shown, monkeypatch):
    monkeypatch.setattr(progname._State, "prog", "cicatrix")  # as the installed command would be
    out = scrub(raw)
    assert shown in out and "`" not in out and "_" not in out and ".md" not in out


def test_events_and_names_in_words():
    tele = Event(1.0, "telemetry", "medium", "light", "TELEMETRY seq 31846: device clock jumped back", {})
    state = Event(1.0, "state", "info", "session", "Session treating → armed", {"from": "treating", "to": "armed"})
    assert event_sentence(tele) == "Data from the UV light: device clock jumped back"
    assert event_sentence(state) == "Session treating → ready."
    assert region_name("breast_chest") == "Breast and chest" and "_" not in region_name("lower_leg")
    title = protocol_title("hypopigmented-atrophic-scar-combined", 1)
    assert "-" not in title.split(" (")[0] and title.endswith("(version 1)")


def test_trainer_fault_list_in_words(qtbot):
    panel = TrainerPanel(lambda *a: None, lambda *a: None)
    qtbot.addWidget(panel)
    texts = [panel.device.itemText(i) for i in range(panel.device.count())]
    assert texts == ["UV light", "needling pen"]
    actions = [panel.action.itemText(i) for i in range(panel.action.count())]
    assert actions and all("_" not in a for a in actions)
    panel.choose("pen", "motor_jam")
    assert panel.action.currentData() == "motor_jam" and panel.action.currentText() == "Motor jams"


def test_a_stop_answers_only_the_latest_open_high_alarm(qtbot):
    """Finding 6: the trainee's STOP time is credited to the alarm it answers, not to earlier unrelated ones."""
    from workstation.bus import now_s
    from workstation.ui.alarm_groups import Condition
    from workstation.ui.alarms import Alarm

    panel = TrainerPanel(lambda *a: None, lambda *a: None)
    qtbot.addWidget(panel)
    t = now_s()

    def alarm(sev, msg, at):
        a = Alarm(Event(at, "connection", sev, "pen", msg, {}), shown_at_s=at)
        assert isinstance(a, Condition)
        panel.on_alarm(a)
        return a

    old = alarm("high", "pen disconnected", t - 120)  # long before: not answered by this STOP
    medium = alarm("medium", "pen reconnected", t - 20)  # not a high alarm
    acked = alarm("high", "light disconnected", t - 10)
    acked.acknowledged_at_s = t - 9
    panel.on_ack(acked)
    latest = alarm("high", "no telemetry from light", t - 5)
    panel.on_stop(t)
    by = {r.message: r for r in panel.responses}
    assert by["no telemetry from light"].stop_after_s == 5.0
    assert all(by[a.event.message].stop_after_s is None for a in (old, medium, acked))
    assert latest.event.message in by
    panel.on_stop(t + 1)  # a second STOP answers nothing more
    assert by["no telemetry from light"].stop_after_s == 5.0 and "no high-priority alarm open" in panel.log.toPlainText()
