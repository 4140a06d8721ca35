"""A line the headless runner prints for an event the recording cannot hold says so: one published before the
recording began (a device's alarm while the visit was planned) or after it closed (a device's last words as it is
disconnected). Fresh tester of the eleventh session (D3): "light: 550 ms of device time missing" printed at 0.022 s
and two such alarms after the session's end, none in the file, nothing saying so."""

from __future__ import annotations

from workstation.bus import Event, now_s
from workstation.protocols.library import seeds_dir
from workstation.recording import Recording
from workstation.session import visit as visit_module
from workstation.session.runner import run_scenario
from workstation.session.scenario import load_scenario


def test_lines_for_events_outside_the_recording_say_they_are_not_in_it(tmp_path, monkeypatch) -> None:
    begin, close = visit_module.Visit.begin, visit_module.Visit.close

    def alarm(visit, words: str) -> None:
        visit.rig.bus.publish_event(Event(now_s(), "alarm", "medium", "light", words, {}))

    def begin_after_an_alarm(self, **kw):
        alarm(self, "an alarm before the recording")
        return begin(self, **kw)

    def close_after_an_alarm(self):
        alarm(self, "an alarm after the recording")
        return close(self)

    monkeypatch.setattr(visit_module.Visit, "begin", begin_after_an_alarm)
    monkeypatch.setattr(visit_module.Visit, "close", close_after_an_alarm)
    lines: list[str] = []
    result = run_scenario(load_scenario(seeds_dir() / "scenarios" / "upper-arm-striae-light.toml"), tmp_path,
                          out=lines.append)
    (before,) = [line for line in lines if "an alarm before the recording" in line]
    (after,) = [line for line in lines if "an alarm after the recording" in line]
    assert before.endswith("(before the recording began: in the log file, not in the recording)"), before
    assert after.endswith("(after the recording closed: in the log file, not in the recording)"), after
    inside = [line for line in lines if " s    " in line or " s !! " in line]
    assert [line for line in inside if "not in the recording" in line] == [before, after], lines
    with Recording.open(result.recording) as rec:
        assert not [e for e in rec.events if e.message.startswith("an alarm ")]
