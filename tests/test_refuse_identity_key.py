"""The key the driver adds to a device's identity, `raw_json_hex` (the IDENTITY's own bytes when cleaning changed
anything), is the driver's alone: a device that sends a key of that name cannot spoof it. Its key is kept with one
more ` (given)` (`raw_json_hex` → `raw_json_hex (given)`, `raw_json_hex (given)` → `raw_json_hex (given) (given)`),
and since that changed the JSON the device's original bytes are kept under `raw_json_hex`, so nothing is lost
(docs/protocol.md, docs/recording-format.md; fresh tester of Cicatrix).

A device written from docs/protocol.md (tests/hostile_device.py) on a real pty, the real light driver and a real Rig
with its recorder; the file is read back with plain h5py."""

from __future__ import annotations

import json

import h5py

from drivers import protocol as p
from tests.hostile_device import LIGHT_IDENTITY, HostileDevice
from workstation.session.rig import Rig

FORGED = "00ff"  # what a device could claim were its original bytes


def _identity_through_a_recording(tmp_path, identity_raw: bytes) -> tuple[dict, dict]:
    """(the identity as the driver took it, as the recording holds it) for a device sending `identity_raw`."""
    dev = HostileDevice(identity_raw=identity_raw).start()
    rig = Rig.clinical({"light": dev.port})
    try:
        rig.start_recording(tmp_path, patient_pseudonym="PX-0001", operator_id="op", protocol_id="p",
                            protocol_version="1")
        taken = rig.devices["light"].identity.as_dict()
    finally:
        path, _ = rig.close()
        dev.stop()
    with h5py.File(path, "r") as f:
        recorded = f["devices/light"].attrs["identity_json"]
    return taken, json.loads(recorded.decode() if isinstance(recorded, bytes) else recorded)


def test_a_device_key_named_like_the_drivers_is_set_aside_and_its_bytes_kept(tmp_path):
    raw = json.dumps({**LIGHT_IDENTITY, p.RAW_IDENTITY_KEY: FORGED}).encode()
    taken, recorded = _identity_through_a_recording(tmp_path, raw)
    for info in (taken, recorded):
        assert info[p.RAW_IDENTITY_KEY] == raw.hex() != FORGED  # the driver's key holds the device's true bytes
        assert info[p.RAW_IDENTITY_KEY + " (given)"] == FORGED  # the device's own value, under its set-aside name
        assert json.loads(bytes.fromhex(info[p.RAW_IDENTITY_KEY]))[p.RAW_IDENTITY_KEY] == FORGED


def test_a_whole_family_of_such_keys_never_meets_and_nothing_is_lost():
    sent = {"model": "M", "raw_json_hex": "a", "raw_json_hex (given)": "b", "raw_json_hex (given) (given)": "c",
            "raw_json_hex\u0000": "d", "calibration": {"raw_json_hex": "nested, not the driver's key"}}
    raw = json.dumps(sent).encode()
    info = p.parse_identity(p.ACK_PAYLOAD.pack(1) + raw)
    assert info["raw_json_hex"] == raw.hex()
    # "raw_json_hex\0" cleans to "raw_json_hex": it met the device's own one (as two cleaned keys meet), and both
    # are set aside together; every byte the device sent is in raw_json_hex
    assert info["raw_json_hex (given)"] in ("a", "d")
    assert info["raw_json_hex (given) (given)"] == "b" and info["raw_json_hex (given) (given) (given)"] == "c"
    assert info["calibration"] == {"raw_json_hex": "nested, not the driver's key"}  # only the top level is ours
    assert json.loads(bytes.fromhex(info["raw_json_hex"])) == sent


def test_a_device_key_that_only_resembles_the_drivers_is_kept_as_sent():
    raw = json.dumps({"model": "M", "raw_json_hex_note": "x", "my raw_json_hex (given)": "y"}).encode()
    info = p.parse_identity(p.ACK_PAYLOAD.pack(1) + raw)
    assert info == {"model": "M", "raw_json_hex_note": "x", "my raw_json_hex (given)": "y"}  # nothing changed
