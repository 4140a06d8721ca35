"""Texts inside the JSON documents and the attributes of a file changed by another program are given by the text
rule too, not only the text columns (second fresh tester of the tenth session: an event's `details.cause` with an
escape sequence and U+202E reached the replay window as it was; two identity keys that only differed by a control
character kept one value).

Real recorder files, changed afterwards with plain h5py as another program would, read back with `Recording`."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import h5py
import numpy as np
from helpers_recording import write_session

from workstation.bus import CommandRecord, Event
from workstation.recording import Recording

BAD = "x\x1b[31m\u202eevil\u2028line"


def _unsafe(value: object) -> list[str]:
    texts = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return [hex(ord(ch)) for ch in texts if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]


def _rewrite(path: Path, table: str, column: str, match: bytes, new: str) -> None:
    with h5py.File(path, "r+") as f:
        rows = f[table][:]
        i = next(i for i, r in enumerate(rows) if match in bytes(r[column]))
        rows[column][i] = new.encode("utf-8")
        f[table][...] = rows


def test_texts_inside_details_args_and_plans_are_cleaned_and_their_bytes_noted(tmp_path: Path) -> None:
    path = write_session(tmp_path, 0.3, events=[Event(1000.1, "interlock", "high", "safety", "a trip",
                                                      {"cause": "plain", "raw_hex": {"message": "00"}})],
                         commands=[CommandRecord(1000.2, "light", "set", {"target": 1}, "ack", 1000.21)],
                         plan={"areas": [{"label": "arm"}]})
    details = {"cause": BAD, "nested": [{"k" + BAD: 1}], "raw_hex": {"message": "00"}}
    _rewrite(path, "events", "details_json", b'"plain"', json.dumps(details, ensure_ascii=False))
    _rewrite(path, "commands", "args_json", b'"target"', json.dumps({"target": BAD}, ensure_ascii=False))
    _rewrite(path, "plan", "plan_json", b'"arm"', json.dumps({"areas": [{"label": BAD}]}, ensure_ascii=False))
    with Recording.open(path) as rec:
        (trip,) = [e for e in rec.events if e.message == "a trip"]
        (cmd,) = [c for c in rec.commands if c.command == "set"]
        (_, plan), = rec.plans
    for value in (trip.details, cmd.args, plan):
        assert not _unsafe(value), value
    assert trip.details["cause"] == "x [31m evil line"
    notes = trip.details["raw_hex"]
    assert notes["message"] == "00"  # the note it held, kept
    assert bytes.fromhex(notes["/cause"]).decode() == BAD
    assert bytes.fromhex(notes["key:/nested/0/kx [31m evil line"]).decode() == "k" + BAD
    assert bytes.fromhex(cmd.args["raw_hex"]["/target"]).decode() == BAD
    assert bytes.fromhex(plan["raw_hex"]["/areas/0/label"]).decode() == BAD


def test_identity_keys_that_meet_after_cleaning_keep_both_values_and_attributes_are_cleaned(tmp_path: Path) -> None:
    path = write_session(tmp_path, 0.3)
    with h5py.File(path, "r+") as f:
        g = f["devices/light"]
        g.attrs["identity_json"] = json.dumps({"lamp": 1, "lamp\u0000": 2, "hours\u202e": 3}, ensure_ascii=False)
        g.attrs["model"] = "UVB\x1b]0;title\x07308"
        f["devices/light/telemetry"].attrs["irradiance_mw_cm2_unit"] = "mW/cm\u00b2\u202e"
        f.attrs["operator_id"] = "op\x1b[2J-7"
    with Recording.open(path) as rec:
        light = rec.devices["light"]
        assert (light.identity["lamp"], light.identity["lamp (key 2)"], light.identity["hours "]) == (1, 2, 3)
        assert light.identity["raw_hex"] == {"key:/lamp (key 2)": "6c616d7000", "key:/hours ": "686f757273e280ae"}
        assert not _unsafe(light.identity) and not _unsafe(light.model) and not _unsafe(rec.meta.operator_id)
        assert not _unsafe(light.units["irradiance_mw_cm2"])
        assert light.model == "UVB ]0;title 308" and rec.meta.operator_id == "op [2J-7"


def test_a_recorders_own_file_reads_the_same(tmp_path: Path) -> None:
    """Nothing the recorder wrote is changed on reading: its texts are clean already, no note is added."""
    details = {"cause": "fine", "raw_hex": {"message": "6100"}, "non_finite": {"/x": "inf"}, "x": None,
               "list": [1, 2.5, "a"]}
    path = write_session(tmp_path, 0.3, events=[Event(1000.1, "note", "info", "t", "m", details)])
    with h5py.File(path, "r") as f:
        stored = [json.loads(r["details_json"]) for r in f["events"][:] if r["message"] == b"m"]
    with Recording.open(path) as rec:
        (e,) = [e for e in rec.events if e.message == "m"]
    assert [e.details] == stored
    assert np.isfinite(rec.meta.t0_host_s)
