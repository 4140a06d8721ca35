"""Issue 12, fresh tester: "the recorder drains everything published before the close".

A headless session's file lacked the session's last commands: the STOPs of the session's end are written without
waiting (`stop_now`), their ACKs are read and published by each device's reader thread, and `Rig.stop_recording`
unsubscribed the recorder *before* closing it, so an ACK that arrived while the recording closed reached no recorder
and left no trace (not even the recorder's count of refused items). The tests force that moment instead of hoping
for it: they publish from the writer thread's last flush, after its last take and before the file is closed."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import h5py
from helpers_recording import meta

from workstation.bus import BaseSink, CommandRecord, Event, SessionBus, now_s
from workstation.recording import SessionRecorder
from workstation.session.rig import Rig


def _commands(path: Path) -> list[tuple[str, str, dict, str]]:
    with h5py.File(path, "r") as f:  # plain h5py, as any reader of the format
        assert f.attrs["closed_cleanly"]
        return [(r["device"].decode(), r["command"].decode(), json.loads(r["args_json"]), r["result"].decode())
                for r in f["commands"][:]]


def _events(path: Path) -> list[tuple[str, str, dict]]:
    with h5py.File(path, "r") as f:
        return [(r["source"].decode(), r["message"].decode(), json.loads(r["details_json"])) for r in f["events"][:]]


def _during_the_close(rec: SessionRecorder, act) -> list[bool]:
    """Run `act` once on the writer thread, in its last flush: after its last take, before the file is closed."""
    done: list[bool] = []

    def on_flush(_rows: dict) -> None:
        if rec._inbox.closed and not done:
            done.append(act())

    rec._on_flush = on_flush
    return done


def test_the_stops_answered_while_the_recording_closes_are_in_the_file(tmp_path: Path) -> None:
    rig = Rig.simulation(seed=3, light_warmup_s=0.2)
    try:
        rec = rig.start_recording(tmp_path, patient_pseudonym="PX-1", operator_id="dr-test", protocol_id="test",
                                  protocol_version="1")
        answered = {name: threading.Event() for name in rig.devices}

        class Answers(BaseSink):  # subscribed after the recorder: told once the recorder has had its turn
            def on_command(self, record: CommandRecord) -> None:
                if record.command == "stop" and record.args.get("why") == "session finished":
                    answered[record.device].set()

        rig.bus.subscribe(Answers())

        def stop_both() -> bool:  # as Session.finish does: STOP written without waiting, answered on the readers
            for dev in rig.devices.values():
                dev.stop_now("session finished")
            return all(e.wait(5) for e in answered.values())

        done = _during_the_close(rec, stop_both)
        path, sha = rig.stop_recording()
    finally:
        rig.close()
    assert done == [True]  # both answers were published while the recording was closing
    assert sha is not None
    stops = [(d, res) for d, c, a, res in _commands(path) if c == "stop" and a.get("why") == "session finished"]
    assert sorted(stops) == [("light", "ack"), ("pen", "ack")]
    # (rec.refused_after_close counts the telemetry blocks read after the close too: not what this test is about)


def test_past_the_limit_the_file_says_how_many_were_not_kept(tmp_path: Path) -> None:
    from workstation.recording.late import LateItems

    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0, flush_interval_s=0.05)
    rec.start()
    bus = SessionBus()
    bus.subscribe(rec)
    rec._late = LateItems(limit=3)

    def publish_five() -> bool:
        for k in range(5):
            bus.publish_command(CommandRecord(now_s(), "light", "stop", {"k": k}, "ack", now_s()))
        return True

    before = Event(now_s(), "note", "info", "operator", "before the close", {})
    bus.publish_event(before)
    _during_the_close(rec, publish_five)
    rec.close()
    bus.publish_command(CommandRecord(now_s(), "light", "stop", {"k": 99}, "ack", now_s()))  # after: refused
    assert [a["k"] for _d, _c, a, _r in _commands(rec.path)] == [0, 1, 2]
    notes = [(m, d) for s, m, d in _events(rec.path) if s == "recorder" and "items_not_recorded" in d]
    assert notes == [("2 events or commands published while the recording was closing could not be kept; they are "
                      "not in this file.", {"items_not_recorded": 2})]
    assert ("operator", "before the close", {}) in _events(rec.path)
    assert rec.refused_after_close == 3  # the two not kept and the one after the close, counted


def test_a_row_the_file_cannot_take_as_given_is_written_with_a_note_and_the_batch_with_it(tmp_path: Path) -> None:
    """One bad row failed the writer's whole batch (the rows before and after it lost, the recording stopped: the
    session E-stopped) or, raising in the sink, vanished with only a log line. Each is now in the file, noted."""
    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0, flush_interval_s=0.05)
    rec.start()
    bus = SessionBus()
    bus.subscribe(rec)
    circular: dict = {}
    circular["me"] = circular
    bad = [CommandRecord(now_s(), "light", "circular", circular, "ack", now_s()),
           CommandRecord(now_s(), "light", "list", [1, 2], "ack", now_s()),  # type: ignore[arg-type]
           CommandRecord(now_s(), "light", "no-args", None, "ack", now_s()),  # type: ignore[arg-type]
           CommandRecord("soon", "light", "text-time", {}, "ack", now_s()),  # type: ignore[arg-type]
           CommandRecord(now_s(), "light", "text-reply", {}, "ack", "later")]  # type: ignore[arg-type]
    bus.publish_command(CommandRecord(now_s(), "light", "first", {}, "ack", now_s()))
    for record in bad:
        bus.publish_command(record)
    bus.publish_event(Event(now_s(), "note", "info", "operator", "no details", None))  # type: ignore[arg-type]
    bus.publish_command(CommandRecord(now_s(), "light", "last", {}, "ack", now_s()))
    rec.close()
    assert rec.error is None and bus.sink_errors == 0
    rows = _commands(rec.path)  # closed cleanly
    assert [c for _d, c, _a, _r in rows] == ["first", "circular", "list", "no-args", "text-time", "text-reply", "last"]
    noted = {c: a for _d, c, a, _r in rows if "not_encodable" in a}
    assert set(noted) == {"circular", "list", "no-args", "text-reply"}
    assert noted["list"]["given_repr"] == "[1, 2]" and noted["no-args"]["given_repr"] == "None"
    assert [a for _d, c, a, _r in rows if c == "text-time"] == [{"t_host_s_given": "soon"}]
    [(message, details)] = [(m, d) for s, m, d in _events(rec.path) if s == "operator"]
    assert message == "no details" and details["given_repr"] == "None" and details["not_encodable"]


def test_the_bus_log_line_never_raises_in_the_publishers_thread(caplog) -> None:
    """The bus writes every command to the log after handing it to the sinks; a record whose args JSON cannot show
    (a circular structure, a tuple key) raised there, in a device's reader thread, before the waiting command was
    told its answer had come."""
    bus = SessionBus()
    circular: dict = {}
    circular["me"] = circular
    with caplog.at_level("INFO", logger="workstation.events"):
        bus.publish_command(CommandRecord(now_s(), "light", "set", circular, "ack", now_s()))
        bus.publish_event(Event(now_s(), "note", "info", "operator", "tuple key", {(1, 2): "x"}))
    assert "command light set {'me': {...}}: ack" in caplog.text
    assert "note info operator: tuple key {(1, 2): 'x'}" in caplog.text
    # nested past what repr can walk (a fresh tester of issue 12, eighteenth session: RecursionError to the caller)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with caplog.at_level("INFO", logger="workstation.events"):
        bus.publish_event(Event(now_s(), "note", "info", "fuzz", "deep nesting", {"deep": deep}))
    assert "note info fuzz: deep nesting (a dict that cannot be shown)" in caplog.text
