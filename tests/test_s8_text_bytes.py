"""Damaged bytes in one text row hide nothing else (issue 12, "trust nothing from outside: files"; left open by the
seventh session). A recording whose `/events`, `/commands` or `/plan` row holds bytes that are not UTF-8 (a bad
sector, a copy gone wrong, another program writing into the file) was refused whole: "is a damaged HDF5 file",
exit 2, so `inspect`, `audit`, `export` and replay lost every other row for one text.

Now the row is read with U+FFFD where the bytes were, its original bytes are kept as hex in the row
(`unreadable_utf8_hex`), the rest of the file reads as written, and `inspect` and the replay window say how many rows
hold such bytes. Real files written by the recorder, then changed with plain h5py; the CLI's main in-process; the
replay window offscreen."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers_recording import write_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workstation.bus import CommandRecord, Event
from workstation.recording import Recording
from workstation.recording import format as fmt
from workstation.recording.rows import COMMAND_TEXTS, EVENT_TEXTS, UNDECODABLE_KEY, decoded

T0 = 1000.0
BAD = b"lamp \xff\xfe at 41\xc3 C"  # not UTF-8: a lone 0xff, 0xfe, a cut two-byte sequence


def _session(folder: Path) -> Path:
    events = [Event(T0 + 0.1 * k, "device_state", "info", "light", f"state {k}", {"k": k}) for k in range(5)]
    commands = [CommandRecord(T0 + 0.1 * k + 0.05, "light", "set", {"k": k}, "ok", T0 + 0.1 * k + 0.06)
                for k in range(3)]
    return write_session(folder, 0.5, events=events, commands=commands, plan={"steps": [], "course": 1})


def _put(path: Path, table: str, row: int, column: str, value: bytes) -> None:
    """Row `row` of `table` with `column` set to `value`'s bytes as they are, as another program could write them."""
    with h5py.File(path, "r+") as f:
        ds = f[table]
        r = ds[row]
        r[column] = value
        ds[row] = r


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _session(tmp_path_factory.mktemp("s8-text"))


@pytest.fixture
def copy(written: Path, tmp_path: Path) -> Path:
    dst = tmp_path / written.name
    dst.write_bytes(written.read_bytes())
    return dst


def test_a_message_that_is_not_utf8_is_shown_replaced_and_kept_as_hex(copy: Path) -> None:
    with Recording.open(copy) as rec:
        before = [(e.t_host_s, e.kind, e.message, e.details) for e in rec.events]
        row = next(i for i, e in enumerate(rec.events) if e.message == "state 2")
    _put(copy, fmt.EVENTS, row, "message", BAD)
    with Recording.open(copy) as rec:
        assert rec.undecodable_rows == 1
        after = [(e.t_host_s, e.kind, e.message, e.details) for e in rec.events]
        assert len(after) == len(before)
        changed = [a for a, b in zip(after, before, strict=True) if a != b]
        assert len(changed) == 1
        t, kind, message, details = changed[0]
        assert message == BAD.decode("utf-8", "replace") and "\ufffd" in message
        assert bytes.fromhex(details[UNDECODABLE_KEY]["message"]) == BAD
        assert {k: v for k, v in details.items() if k != UNDECODABLE_KEY} == {"k": 2}
        assert len(rec.commands) == 3 and rec.plan == {"steps": [], "course": 1}


def test_a_details_json_that_is_not_utf8_keeps_its_bytes_and_the_rest(copy: Path) -> None:
    _put(copy, fmt.EVENTS, 0, "details_json", b'{"k": "\xff"}')
    _put(copy, fmt.COMMANDS, 1, "result", b"ok\x80")
    _put(copy, fmt.PLAN, 0, "plan_json", b'{"steps": [], "note": "\xc3"}')
    with Recording.open(copy) as rec:
        assert rec.undecodable_rows == 3
        bad_events = [e for e in rec.events if UNDECODABLE_KEY in e.details]
        assert len(bad_events) == 1 and bad_events[0].details["k"] == "\ufffd"
        assert bytes.fromhex(bad_events[0].details[UNDECODABLE_KEY]["details_json"]) == b'{"k": "\xff"}'
        c = rec.commands[1]
        assert c.result == "ok\ufffd" and bytes.fromhex(c.args[UNDECODABLE_KEY]["result"]) == b"ok\x80"
        assert c.args["k"] == 1 and [x.args for x in rec.commands if x is not c] == [{"k": 0}, {"k": 2}]
        plan = rec.plan
        assert plan["note"] == "\ufffd" and bytes.fromhex(plan[UNDECODABLE_KEY]["plan_json"])[-2:] == b'"}'


def test_the_senders_own_key_of_that_name_is_kept(copy: Path) -> None:
    _put(copy, fmt.EVENTS, 0, "details_json", b'{"unreadable_utf8_hex": "mine"}')
    _put(copy, fmt.EVENTS, 0, "source", b"light\xff")
    with Recording.open(copy) as rec:
        e = next(e for e in rec.events if UNDECODABLE_KEY in e.details)
        assert e.details["unreadable_utf8_hex (given)"] == "mine"
        assert e.details[UNDECODABLE_KEY] == {"source": (b"light\xff").hex()}


def test_inspect_says_it_and_shows_the_whole_file(copy: Path) -> None:
    from workstation.cli import main

    _put(copy, fmt.EVENTS, 3, "kind", b"device_\xffstate")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["inspect", str(copy)])
    text = out.getvalue() + err.getvalue()
    assert "damaged HDF5 file" not in text and "Traceback" not in text
    assert "1 row of the events, commands or plans holds bytes that are not UTF-8" in text, text
    assert UNDECODABLE_KEY in text
    assert "events: 5 " in text and "commands: 3" in text
    assert code != 2  # not refused as damaged (the changed file no longer matches its .sha256: said, exit as audit)


def test_a_file_without_such_bytes_says_nothing_of_them(written: Path) -> None:
    with Recording.open(written) as rec:
        assert rec.undecodable_rows == 0
        assert not any(UNDECODABLE_KEY in e.details for e in rec.events)


_TEXT_BYTES = st.binary(min_size=0, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.sampled_from([(fmt.EVENTS, EVENT_TEXTS), (fmt.COMMANDS, COMMAND_TEXTS)]), data=st.data(),
       value=_TEXT_BYTES)
def test_any_bytes_in_any_text_column_never_refuse_the_file(written: Path, tmp_path_factory, table, data,
                                                             value: bytes) -> None:
    """Whatever bytes one text column of one row holds: the file opens, every row is there, and the reader's note
    holds exactly the bytes that are not UTF-8."""
    name, columns = table
    column = data.draw(st.sampled_from(columns))
    copy = tmp_path_factory.mktemp("s8-any") / written.name
    copy.write_bytes(written.read_bytes())
    if b"\x00" in value:
        value = value.replace(b"\x00", b"")  # a vlen string ends at its first NUL in HDF5: not a byte of the text
    _put(copy, name, 1, column, value)
    with Recording.open(copy) as rec:
        assert len(rec.events) == 5 and len(rec.commands) == 3
        rows = rec.events if name == fmt.EVENTS else rec.commands
        noted = [r for r in rows if UNDECODABLE_KEY in (r.details if name == fmt.EVENTS else r.args)]
        try:
            value.decode("utf-8")
            utf8 = True
        except UnicodeDecodeError:
            utf8 = False
        if utf8:
            assert noted == [] and rec.undecodable_rows == 0
        else:
            assert len(noted) == 1 and rec.undecodable_rows == 1
            note = (noted[0].details if name == fmt.EVENTS else noted[0].args)[UNDECODABLE_KEY]
            assert {k: bytes.fromhex(v) for k, v in note.items()} == {column: value}


def test_undecodable_names_only_the_columns_that_are_not_utf8() -> None:
    row = np.array([(b"ok", "also ok", b"\xff")], dtype=[("a", object), ("b", object), ("c", object)])[0]
    texts, bad = decoded(row, ("a", "b", "c"))
    assert bad == {"c": "ff"}
    assert texts == {"a": "ok", "b": "also ok", "c": "\ufffd"}


def test_the_replay_window_opens_it_and_says_it(qtbot, window, copy: Path) -> None:
    from test_ui_replay import TIMEOUT_MS, open_replay

    _put(copy, fmt.EVENTS, 2, "message", BAD)
    open_replay(qtbot, window, copy)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.replay, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: any("not UTF-8" in m[1] for m in window.messages), timeout=TIMEOUT_MS)
    assert window.replay.recording.undecodable_rows == 1
    assert not any("damaged HDF5 file" in m[1] or "went wrong" in m[1] for m in window.messages)
