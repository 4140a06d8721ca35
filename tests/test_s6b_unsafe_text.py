"""Line, paragraph, bidirectional and other format characters are cleaned like ESC and NUL (fresh tester of issue
12): a STATUS with U+2028 forged a row of the replay's event list and U+202E reversed its tail, and no raw_text_hex
was kept; a model with U+202E reached the HDF5 attributes. One rule (drivers/textrule.py) for the driver's cleaner
and the recorder's."""

from __future__ import annotations

import json
import struct
import time
import unicodedata

import h5py
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers import protocol as p
from drivers.textrule import is_unsafe
from tests.conftest import Tap, wait_for
from tests.hostile_device import LIGHT_IDENTITY, STATUS, HostileDevice
from workstation.recording.clean import RAW_HEX_KEY, clean_fields, clean_text, json_with_notes

# every character the tester named, and the rest of the kind
NAMED = ("\u2028", "\u2029", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200b", "\ufeff", "\u061c", "\x85",
         "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u00ad", "\u200d", "\x1c", "\x1d", "\x1e",
         "\x0b", "\x0c", "\r", "\n", "\t", "\x1b", "\x07", "\x7f", "\x9b")
UNSAFE = st.sampled_from(NAMED) | st.characters(categories=("Cc", "Cf", "Zl", "Zp"), exclude_characters="\0")
SPOOF = "ok\u2028      9.99 s  INFO      Session treating → completed (spoofed line)\u202e RTL-tail"


def one_line_and_plain(text: str) -> bool:
    return all(len(f"x{ch}x".splitlines()) == 1 and unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")
               for ch in text)


texts_with_unsafe = st.tuples(st.text(), UNSAFE, st.text()).map("".join)


def test_every_named_character_is_unsafe_and_every_line_break_of_python_too():
    assert all(is_unsafe(ch) for ch in NAMED)
    import sys
    breaks = [chr(c) for c in range(sys.maxunicode + 1) if len(f"x{chr(c)}x".splitlines()) > 1]
    assert breaks and all(is_unsafe(ch) for ch in breaks)
    assert not any(is_unsafe(ch) for ch in "aé €→ “”'\u00a0\u3000")


@given(texts_with_unsafe)
def test_the_recorders_cleaner_leaves_one_line_of_plain_text_and_keeps_the_bytes(text):
    cleaned, hexed = clean_text(text)
    assert one_line_and_plain(cleaned)
    assert hexed is not None and bytes.fromhex(hexed) == text.encode("utf-8", errors="surrogatepass")
    cleaned_b, hexed_b = clean_text(text.encode("utf-8", errors="surrogatepass"))
    assert one_line_and_plain(cleaned_b) and hexed_b == hexed


@given(texts_with_unsafe)
def test_the_drivers_cleaner_agrees_and_keeps_raw_text_hex(text):
    payload = text.encode("utf-8", errors="surrogatepass")
    shown = p.text(payload)
    assert one_line_and_plain(shown) and one_line_and_plain(p.clean_text(text))
    assert bytes.fromhex(p.raw_if_unclean(payload)["raw_text_hex"]) == payload
    # the recorder's cleaner and the driver's turn the same characters into spaces
    if "\0" not in text and "\ufffd" not in text:  # NUL and U+FFFD: each cleaner its own documented way
        assert shown == clean_text(text)[0].strip()


@given(st.dictionaries(texts_with_unsafe, texts_with_unsafe, min_size=1, max_size=3))
def test_a_details_dict_of_such_texts_is_written_plain_with_every_original_in_raw_hex(details):
    texts, details_json = clean_fields({"message": SPOOF}, details)
    assert one_line_and_plain(texts["message"]) and texts["message"].startswith("ok ")
    written = json.loads(details_json)
    notes = written.pop(RAW_HEX_KEY)
    assert bytes.fromhex(notes["message"]).decode() == SPOOF
    assert all(one_line_and_plain(k) and one_line_and_plain(v) for k, v in written.items())
    originals = {bytes.fromhex(h).decode("utf-8", errors="surrogatepass") for k, h in notes.items()
                 if k.startswith("key:")}
    assert originals == set(details)
    assert one_line_and_plain(json_with_notes({"model": "UVB\u202e308"}).replace("\\", ""))


def test_a_devices_spoofed_status_and_model_reach_the_file_plain_with_their_bytes(tmp_path):
    """A real pty device and a real Rig with its recorder: the STATUS text with U+2028 and U+202E, and a model with
    U+202E, are one plain line in the event, the attributes and the identity; the device's bytes are in the file."""
    from workstation.session.rig import Rig

    model = "UVB-308\u202e hostile\u2066 test\u200b device"
    sent = json.dumps({**LIGHT_IDENTITY, "model": model}, ensure_ascii=False).encode()  # the characters raw, in UTF-8
    dev = HostileDevice(identity_raw=sent).start()
    rig = Rig.clinical({"light": dev.port})
    try:
        rig.start_recording(tmp_path, patient_pseudonym="PX-0001", operator_id="op", protocol_id="p",
                            protocol_version="1")
        tap = Tap()
        rig.bus.subscribe(tap)
        wait_for(lambda: tap.blocks.get("light"), what="blocks")
        dev.send(STATUS, struct.pack("<BB", p.State.IDLE, p.StopReason.DOSE_REACHED) + SPOOF.encode())
        wait_for(lambda: any("spoofed" in e.message for e in tap.kinds("device_state")), what="the STATUS")
        status = [e for e in tap.kinds("device_state") if "spoofed" in e.message][-1]
        assert one_line_and_plain(status.message)
        assert bytes.fromhex(status.details["raw_text_hex"]).decode() == SPOOF
        time.sleep(0.1)
    finally:
        path, _ = rig.close()
        dev.stop()
    with h5py.File(path, "r") as f:
        attrs = dict(f["devices/light"].attrs)
        events = f["events"][:]
    shown_model = attrs["model"].decode() if isinstance(attrs["model"], bytes) else str(attrs["model"])
    assert one_line_and_plain(shown_model) and shown_model.startswith("UVB-308 ")
    identity = json.loads(attrs["identity_json"])
    assert identity["model"] == shown_model
    assert bytes.fromhex(identity["raw_json_hex"]) == sent  # the device's own JSON, whole
    for row in events:
        for column in ("kind", "source", "message"):
            value = row[column].decode() if isinstance(row[column], bytes) else str(row[column])
            assert one_line_and_plain(value), (column, value)
    spoofed = [row for row in events if b"spoofed" in row["message"]]
    assert len(spoofed) == 1
    assert bytes.fromhex(json.loads(spoofed[0]["details_json"])["raw_text_hex"]).decode() == SPOOF


@pytest.mark.parametrize("field", ["title", "description", "operator", "pseudonym", "area"])
def test_format_characters_in_a_scenarios_texts_are_cleaned_when_it_is_loaded(tmp_path, field):
    """The scenario's texts (title, operator id, pseudonym …) go to the window, the store and the recording: the
    bidirectional and zero-width characters go the way ESC goes (tests/test_h12e_scenario_text.py)."""
    from test_h12e_scenario_text import FIELDS, _texts, _with

    from workstation.session.scenario import ScenarioError, load_scenario

    assert field in FIELDS
    path = _with(tmp_path, field, "dr\u202eevil\u2066x\u200by\ufeffz\u00adw\u2029v\x85u")
    refused = {"pseudonym": "patient.pseudonym: 'dr evil x y z w v u' is not a pseudonym",
               "operator": "session.operator: 'dr evil x y z w v u' is not an account name"}  # the store's rules
    if field in refused:  # cleaned, then refused by the store's rule (spaces), in one clean line
        with pytest.raises(ScenarioError) as err:
            load_scenario(path)
        assert refused[field] in str(err.value)
        assert one_line_and_plain(str(err.value))
        return
    s = load_scenario(path)
    assert all(one_line_and_plain(t) for t in _texts(s))
    got = {"title": s.title, "description": s.description, "operator": s.operator_id, "pseudonym": s.pseudonym,
           "area": s.areas[0].area_id}[field]
    assert got == "dr evil x y z w v u"
