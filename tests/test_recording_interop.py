"""Recordings meet other programs: HDF5 1.10's own tools read them, and every text and JSON document in them is
valid UTF-8 without NUL and strict JSON, whatever a device or a caller sent. Files are written by the recorder and
read back with plain h5py, h5dump/h5ls, and a JSON parser that refuses NaN and Infinity."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers_recording import FRAME, check_rows, write_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workstation.bus import CommandRecord, Event
from workstation.recording import Recording
from workstation.recording.clean import (
    NON_FINITE_KEY,
    NOTE_KEYS,
    RAW_HEX_KEY,
    T_GIVEN_KEY,
    given_back,
    given_key,
    json_with_notes,
)

T0 = 1000.0
TOOLS = shutil.which("h5dump") and shutil.which("h5ls")
needs_tools = pytest.mark.skipif(
    not TOOLS, reason="Debian's hdf5-tools (h5dump, h5ls) are not installed; .ci/run installs them "
    "(apt-get install hdf5-tools)")


def strict(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity, as RFC 8259 parsers (MATLAB, jq, browsers) do."""
    def refuse(name: str):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _text(v) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


STATUS_PADDED = "light: idle" + "\0" * 23  # the issue's STATUS text, padded with NULs by the device
PROTOCOL_EVENT = Event(T0 + 0.5, "protocol", "info", "session", "step 2 started: needling on chin",
                       {"event": "step_started", "area": "chin", "area_dose_cap_mj_cm2": math.inf,
                        "depth_mm": 1.0, "nan_value": math.nan, "down": -math.inf})


def _session(tmp_path: Path) -> Path:
    events = [
        Event(T0 + 0.2, "device_state", "info", "light", STATUS_PADDED, {"state": "IDLE", "reason": "NONE"}),
        Event(T0 + 0.3, "note", "info", "operator", "embedded\0NUL and bad \udcff byte", {"text": "x\0y"}),
        PROTOCOL_EVENT,
    ]
    commands = [CommandRecord(T0 + 0.4, "light", "set", {"param": "target_dose", "value": math.inf}, "ack",
                              T0 + 0.401)]
    return write_session(tmp_path, 1.0, events=events, commands=commands,
                         plan={"areas": [{"cap_mj_cm2": math.inf, "label": "chin\0"}]}, t0_host_s=T0)


# --- item 1: HDF5 1.10 tools -------------------------------------------------------------------------------------
@needs_tools
def test_hdf5_1_10_tools_read_a_recorded_session(tmp_path):
    path = _session(tmp_path)
    for cmd in (["h5dump", "-H", str(path)], ["h5ls", "-r", str(path)], ["h5dump", "-d", "/events", str(path)],
                ["h5dump", "-B", "-H", str(path)]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "error" not in out.stderr.lower(), (cmd, out.stderr[-2000:])
        if cmd[:2] == ["h5ls", "-r"]:
            for name in ("/devices/light/telemetry", "/devices/pen/index", "/events", "/commands", "/plan"):
                assert name in out.stdout
        if cmd[1] == "-B":
            assert "SUPERBLOCK_VERSION 3" in out.stdout  # the version SWMR needs, and 1.10 reads
        if cmd[1] == "-d":
            assert '"light: idle"' in out.stdout and "step 2 started" in out.stdout


def test_the_writer_asks_hdf5_for_the_1_10_format(tmp_path):
    """Independent of the tools: the bounds the recorder's file is written with (HDF5 2.0's "latest" wrote datatype
    messages h5dump 1.10 rejects), and SWMR still on."""
    from helpers_recording import add_devices, meta

    from workstation.recording import SessionRecorder

    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0, t0_host_s=T0)
    add_devices(rec)
    rec.start()
    try:
        assert rec._h5.id.get_access_plist().get_libver_bounds() == (h5py.h5f.LIBVER_V110, h5py.h5f.LIBVER_V110)
        assert rec._h5.swmr_mode
    finally:
        rec.close()
    with open(rec.path, "rb") as f:
        head = f.read(9)
    assert head[:8] == b"\x89HDF\r\n\x1a\n" and head[8] == 3  # superblock version 3: SWMR, readable by 1.10


# --- items 3 and 5: clean text, strict JSON ----------------------------------------------------------------------
def test_a_nul_padded_status_and_infinite_caps_are_recorded_clean_and_strict(tmp_path):
    path = _session(tmp_path)
    with h5py.File(path, "r") as f:  # plain h5py, as any engineer would
        ev = f["events"][:]
        for r in ev:
            for col in ("kind", "severity", "source", "message", "details_json"):
                s = _text(r[col])
                assert "\0" not in s and s.encode("utf-8").decode("utf-8") == s
            strict(_text(r["details_json"]))
        for r in f["commands"][:]:
            strict(_text(r["args_json"]))
        for r in f["plan"][:]:
            strict(_text(r["plan_json"]))
        for g in f["devices"].values():
            strict(_text(g.attrs["identity_json"]))
            strict(_text(g.attrs["calibration_json"]))
        status = next(r for r in ev if _text(r["source"]) == "light")
        assert _text(status["message"]) == "light: idle"
        assert strict(_text(status["details_json"]))[RAW_HEX_KEY]["message"] == STATUS_PADDED.encode().hex()
        proto = strict(_text(next(r for r in ev if _text(r["kind"]) == "protocol")["details_json"]))
        assert proto["area_dose_cap_mj_cm2"] is None and proto["depth_mm"] == 1.0
        assert proto[NON_FINITE_KEY] == {"/area_dose_cap_mj_cm2": "inf", "/nan_value": "nan", "/down": "-inf"}
        note = strict(_text(next(r for r in ev if _text(r["kind"]) == "note")["details_json"]))
        assert bytes.fromhex(note[RAW_HEX_KEY]["message"]) == b"embedded\0NUL and bad \xff byte"
        assert note["text"] == "x\ufffdy" and bytes.fromhex(note[RAW_HEX_KEY]["/text"]) == b"x\0y"
        cmd = strict(_text(f["commands"][0]["args_json"]))
        assert cmd["value"] is None and cmd[NON_FINITE_KEY] == {"/value": "inf"}
    with Recording.open(path) as rec:  # and the project's reader, then the tools built on it
        assert [e.kind for e in rec.events] == ["device_state", "note", "protocol"]
        assert rec.plan["areas"][0]["label"] == "chin"
        check_rows("light", rec.telemetry("light"))


def test_inspect_of_the_issue_inputs(tmp_path, capsys):
    from main import main

    path = _session(tmp_path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "events: 3" in out and "checksum: SHA-256 matches" in out


_ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)  # NULs and lone surrogates too
# Huge texts too (up to ~200k characters): a piece of any text repeated, NULs and surrogates included.
_HUGE_TEXT = st.builds(lambda piece, times: piece * times,
                       st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=40),
                       st.integers(1_000, 5_000))
_ANY_TEXT_OR_HUGE = st.one_of(_ANY_TEXT, _HUGE_TEXT)
_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(), _ANY_TEXT_OR_HUGE,
                  st.binary(max_size=16))
# the cleaner's own note names too: a sender's detail named so must survive next to the notes (fresh tester of 12)
# and keys that differ only by NULs or bad bytes (second fresh tester: {"a": 1, "a\0": 2} lost a value)
_DETAIL_KEY = st.one_of(st.sampled_from([RAW_HEX_KEY, NON_FINITE_KEY, T_GIVEN_KEY, given_key(RAW_HEX_KEY),
                                         given_key(given_key(NON_FINITE_KEY)), "a", "a\0", "a\0\0", "a\ufffd",
                                         "a (key 2)", "a\udce9"]), _ANY_TEXT)
_DETAILS = st.dictionaries(_DETAIL_KEY, st.recursive(_LEAF, lambda kids: st.lists(kids, max_size=4)
                                                   | st.dictionaries(_ANY_TEXT, kids, max_size=4), max_leaves=12),
                           max_size=6)


def _key_bytes(key: str) -> bytes:
    try:
        return key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return key.encode("utf-8", "surrogatepass")


def _senders_details(got: dict) -> dict[bytes, object]:
    """The details as their sender gave them, keys as bytes, from what the file holds: each key written changed
    has its original bytes in raw_hex["key:/<key>"] (JSON Pointer); a name of the notes' family set aside is given
    back (given_back). The notes themselves are left out."""
    raw = got.get(RAW_HEX_KEY, {})
    out = {}
    for key, value in got.items():
        if key in (RAW_HEX_KEY, NON_FINITE_KEY, T_GIVEN_KEY):
            continue
        note = raw.get("key:/" + key.replace("~", "~0").replace("/", "~1"))
        original = bytes.fromhex(note).decode("utf-8", "surrogateescape") if note is not None else key
        out[_key_bytes(given_back(given_back(original, NOTE_KEYS), (T_GIVEN_KEY,)))] = value
    return out


def _restore(text: str, raw: dict, key: str, original) -> None:
    """A text that was changed on its way into the file is given back, byte for byte, by its raw_hex note."""
    if key in raw:
        if isinstance(original, bytes):
            assert bytes.fromhex(raw[key]) == original
        else:
            try:  # bytes a decoder could not read come back as they were; other lone surrogates as themselves
                expected = original.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                expected = original.encode("utf-8", "surrogatepass")
            assert bytes.fromhex(raw[key]) == expected
    else:
        assert text == original


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(_ANY_TEXT_OR_HUGE, min_size=1, max_size=4), sources=st.lists(_ANY_TEXT, min_size=1, max_size=4),
       details=st.lists(_DETAILS, min_size=1, max_size=4))
def test_any_event_text_and_details_reach_the_file_clean_and_strict(messages, sources, details):
    n = min(len(messages), len(sources), len(details))
    events = [Event(T0 + 0.01 * (k + 1), "note", "info", sources[k], messages[k], details[k]) for k in range(n)]
    with tempfile.TemporaryDirectory() as d:
        path = write_session(Path(d), 0.05, events=events, t0_host_s=T0)
        with h5py.File(path, "r") as f:
            rows = f["events"][:]
            assert len(rows) == n
            for k, r in enumerate(rows):
                texts = {c: _text(r[c]) for c in ("kind", "severity", "source", "message")}
                assert all("\0" not in t for t in texts.values())
                d_json = _text(r["details_json"])
                assert "\0" not in d_json
                got = strict(d_json)
                raw = got.get(RAW_HEX_KEY, {})
                _restore(texts["message"], raw, "message", messages[k])
                _restore(texts["source"], raw, "source", sources[k])
                given = _senders_details(got)  # every key the sender gave is there, and can be told back
                assert sorted(given) == sorted(_key_bytes(key) for key in details[k]), (details[k], got)
                for key, value in details[k].items():
                    back = given[_key_bytes(key)]
                    if isinstance(value, float) and not math.isfinite(value):
                        assert back is None and NON_FINITE_KEY in got
                    elif isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
                        assert back == value
        with Recording.open(path) as rec:
            assert len(rec.events) == n


# --- rows allocated but never written (a write that failed on a full disk) ---------------------------------------
def test_rows_allocated_but_never_written_are_not_read_as_data(tmp_path):
    path = _session(tmp_path)
    with h5py.File(path, "r+") as f:  # what a failed append leaves: the extent grew, the data never arrived
        for name in ("events", "commands", "plan"):
            f[name].resize((f[name].shape[0] + 3,))
        tel = f["devices/light/telemetry"]
        n = tel.shape[0]
        tel.resize((n + 1000,))
        ev = f["events"][:]
        ev[0]["details_json"] = ""  # and an older file's unreadable details
        f["events"][0] = ev[0]
    with Recording.open(path) as rec:
        assert len(rec.events) == 3 and len(rec.commands) == 1 and len(rec.plans) == 1
        assert rec.samples("light") == n
        assert rec.events[0].details == {"unreadable_json": ""}
        assert np.all(rec.telemetry("light")["t_host_s"] > 0)
        assert rec.samples("light") == 2000 and n == 2000 and FRAME == 20


def test_exported_json_columns_are_strict(tmp_path):
    import csv

    from main import main

    path = _session(tmp_path)
    assert main(["export", str(path), "--csv", str(tmp_path / "csv")]) == 0
    for name, column in (("events.csv", "details_json"), ("commands.csv", "args_json")):
        with open(tmp_path / "csv" / name, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert rows and all(isinstance(strict(r[column]), dict) for r in rows)


def test_a_senders_detail_named_like_a_note_is_kept_beside_the_notes(tmp_path):
    """Fresh tester of issue 12: details {'raw_hex': …, 'non_finite': …} of the sender's own were overwritten by the
    cleaner's notes when a text or number had to change. Both are in the file; the notes stay the cleaner's."""
    events = [Event(T0 + 0.01, "note", "info", "trainer", "with\0NUL",
                    {RAW_HEX_KEY: "sender's own", NON_FINITE_KEY: 3, "dose": math.nan}),
              Event(T0 + 0.02, "note", "info", "trainer", "clean", {RAW_HEX_KEY: {"message": "not a note"}})]
    path = write_session(tmp_path, 0.05, events=events, t0_host_s=T0)
    with h5py.File(path, "r") as f:
        first, second = (strict(_text(r["details_json"])) for r in f["events"][:])
    assert first[given_key(RAW_HEX_KEY)] == "sender's own" and first[given_key(NON_FINITE_KEY)] == 3
    assert bytes.fromhex(first[RAW_HEX_KEY]["message"]) == b"with\0NUL"
    assert first[NON_FINITE_KEY] == {"/dose": "nan"} and first["dose"] is None
    assert second == {given_key(RAW_HEX_KEY): {"message": "not a note"}}  # nothing cleaned: still not a note
    # re-written from what was read back (export): the notes held are merged with new ones, never replaced
    again = strict(json_with_notes({**first, "late": math.inf, "text": "a\0b"}, notes_held=True))
    assert again[RAW_HEX_KEY]["message"] == first[RAW_HEX_KEY]["message"] and "/text" in again[RAW_HEX_KEY]
    assert again[NON_FINITE_KEY] == {"/dose": "nan", "/late": "inf"}
    assert again[given_key(RAW_HEX_KEY)] == "sender's own"


def test_no_detail_of_a_sender_is_lost_to_a_note_of_the_same_name(tmp_path):
    """Fresh tester of issue 12: {"raw_hex": 1, "raw_hex (given)": 2} lost the 1; a sender's own t_host_s_given was
    overwritten when the row was stamped on arrival; an identity's "raw_hex" was taken for the cleaner's note."""
    events = [Event(T0 + 0.01, "note", "info", "trainer", "with\0NUL",
                    {RAW_HEX_KEY: 1, given_key(RAW_HEX_KEY): 2, T_GIVEN_KEY: "mine"}),
              Event(math.nan, "note", "info", "trainer", "no time", {T_GIVEN_KEY: "mine too"})]
    path = write_session(tmp_path, 0.05, events=events, t0_host_s=T0)
    with h5py.File(path, "r") as f:
        first, second = sorted((strict(_text(r["details_json"])) for r in f["events"][:]), key=len)[::-1]
    assert first[given_key(given_key(RAW_HEX_KEY))] == 2 and first[given_key(RAW_HEX_KEY)] == 1  # one more each
    assert first[given_key(T_GIVEN_KEY)] == "mine" and T_GIVEN_KEY not in first  # not restamped: no note
    assert bytes.fromhex(first[RAW_HEX_KEY]["message"]) == b"with\0NUL"
    assert second[given_key(T_GIVEN_KEY)] == "mine too" and second[T_GIVEN_KEY] is None  # NaN: the note, as null
    identity = strict(json_with_notes({RAW_HEX_KEY: {"x": "y"}, "title": "a\0b"}))
    assert identity[given_key(RAW_HEX_KEY)] == {"x": "y"} and identity[RAW_HEX_KEY] == {"/title": "610062"}


def test_keys_that_differ_only_by_nuls_or_bad_bytes_keep_every_value():
    """Second fresh tester of issue 12: {"a": 1, "a\\0": 2} lost a value, both keys being "a" once cleaned. Each key
    that had to change takes a free name, its original bytes in raw_hex; none takes a note's name."""
    from workstation.recording.clean import clean_fields

    got = strict(json_with_notes({"a\0": 2, "a": 1, "a\udce9": 3, "raw_hex\0": 4}))
    assert got["a"] == 1 and got["a (key 2)"] == 2 and got["a\ufffd"] == 3 and got["raw_hex (key 2)"] == 4
    assert bytes.fromhex(got[RAW_HEX_KEY]["key:/a (key 2)"]) == b"a\0"
    assert bytes.fromhex(got[RAW_HEX_KEY]["key:/raw_hex (key 2)"]) == b"raw_hex\0"
    _texts, details = clean_fields({"message": "m"}, {T_GIVEN_KEY + "\0": "mine", "x": math.nan})
    d = strict(details)
    assert T_GIVEN_KEY not in d and d[T_GIVEN_KEY + " (key 2)"] == "mine"  # never taken for the recorder's stamp
    # the set-aside names are undone one step at a time: no two keys meet, whatever the sender called them
    sent = {RAW_HEX_KEY: 1, given_key(RAW_HEX_KEY): 2, given_key(given_key(RAW_HEX_KEY)): 3, "z": "a\0"}
    got = strict(json_with_notes(sent))
    back = {given_back(k, NOTE_KEYS): v for k, v in got.items() if k not in NOTE_KEYS}
    assert back == {k: v for k, v in sent.items() if k != "z"} | {"z": "a"}  # a trailing NUL is padding: dropped, its bytes in raw_hex


def test_every_note_names_one_place_so_none_overwrites_another(tmp_path):
    """Third fresh tester of issue 12: the notes' dotted paths met. A key 'k\\0' and a key 'k (key)' both wrote
    raw_hex['details.k (key)']; {'x': {'y\\0': 1}, 'x.y\\0': 2} lost the nested key's bytes; [b'\\xff'] under 'x' and
    b'\\xfe' under 'x[0]' lost the list item's; a nested NaN went unnoted beside 'x.y'. Notes are now named by JSON
    Pointer (RFC 6901), changed keys under 'key:<pointer>': every original byte is in the file once."""
    cases = [({"k\0": 1, "k (key)": b"\xff"}, {"key:/k": b"k\0", "/k (key)": b"\xff"}, {}),
             ({"x": {"y\0": 1}, "x.y\0": 2}, {"key:/x/y": b"y\0", "key:/x.y": b"x.y\0"}, {}),
             ({"x": [b"\xff"], "x[0]": b"\xfe"}, {"/x/0": b"\xff", "/x[0]": b"\xfe"}, {}),
             ({"x": {"y": math.nan}, "x.y": math.inf}, {}, {"/x/y": "nan", "/x.y": "inf"}),
             ({"a/b": {"~": b"\xff"}}, {"/a~1b/~0": b"\xff"}, {})]
    events = [Event(T0 + 0.01 * (i + 1), "note", "info", "trainer", "m", d) for i, (d, _h, _n) in enumerate(cases)]
    path = write_session(tmp_path, 0.1, events=events, t0_host_s=T0)
    with h5py.File(path, "r") as f:
        rows = [strict(_text(r["details_json"])) for r in f["events"][:]]
    assert len(rows) == len(cases)
    for got, (_d, hexes, non_finite) in zip(rows, cases, strict=True):
        assert {k: bytes.fromhex(v) for k, v in got.get(RAW_HEX_KEY, {}).items()} == hexes, got
        assert got.get(NON_FINITE_KEY, {}) == non_finite, got
