"""The event log's JSON is strict RFC 8259 JSON, as the recording's is: a needling `protocol` event's
`"area_dose_cap_mj_cm2": Infinity` went into the log file as it was, which strict parsers refuse (fresh tester of the
eleventh session, D7). A non-finite number is named as a string there ("inf", "-inf", "nan")."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from workstation.bus import CommandRecord, Event, SessionBus


def _strict(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def test_every_logged_event_and_command_is_strict_json(caplog: pytest.LogCaptureFixture) -> None:
    bus = SessionBus()
    with caplog.at_level(logging.INFO, logger="workstation.events"):
        bus.publish_event(Event(1.0, "protocol", "info", "session", "needling step",
                                {"area_dose_cap_mj_cm2": float("inf"), "x": [float("nan"), np.float32("-inf")],
                                 "nested": {"y": np.float64("inf")}, "fine": 1.5}))
        bus.publish_command(CommandRecord(1.0, "pen", "set", {"depth_mm": float("nan")}, "ack", 1.01))
    event, command = [r for r in caplog.records if r.name == "workstation.events"]
    assert _strict(event.args[4]) == {"area_dose_cap_mj_cm2": "inf", "x": ["nan", "-inf"], "nested": {"y": "inf"},
                                      "fine": 1.5}
    assert _strict(command.args[2]) == {"depth_mm": "nan"}
