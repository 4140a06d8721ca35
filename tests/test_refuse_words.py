"""A device's REFUSE: its code said in words, never the code's name (BAD_STATE) nor a bare number, wherever a person
reads it (the driver's CommandRefused, the headless runner's lines); its reason cleaned as every device text is, and
when the cleaning changed anything the device's original bytes kept as `raw_text_hex` with the command in the
recording, as a FAULT's or a STATUS's are in their event's details (fresh tester of Cicatrix).

A device written from docs/protocol.md (tests/hostile_device.py) on a real pty, the real light driver and a real
Rig with its recorder; the file is read back with plain h5py."""

from __future__ import annotations

import json
import struct

import h5py
import pytest

from drivers import protocol as p
from drivers.errors import CommandRefused
from drivers.testing import Tap, wait_for
from tests.hostile_device import ARM, REFUSE, HostileDevice, unwire
from workstation.session.rig import Rig
from workstation.session.runner import ProgressPrinter

UNCLEAN = b"Busy\x1b[2J with\x00 an \xffexposure\x07"  # ESC, NUL, a byte that is not UTF-8, BEL


class RefusingDevice(HostileDevice):
    """Answers ARM 1 with a REFUSE of the code and reason bytes it is given; everything else as HostileDevice."""

    refuse_code: int = p.Refusal.BAD_STATE
    refuse_reason: bytes = UNCLEAN

    def _serve(self, raw: bytes) -> None:
        try:
            msg_type, seq, payload = unwire(raw)
        except (ValueError, struct.error):
            return
        if msg_type == ARM and payload == b"\x01":
            self.received.append((0.0, msg_type, seq, payload))
            self.send(REFUSE, p.REFUSE_HEAD.pack(seq, self.refuse_code) + self.refuse_reason)
            return
        super()._serve(raw)


def _refused_arm(tmp_path, code: int, reason: bytes) -> tuple[CommandRefused, list, dict]:
    """ARM refused by the device through a recording Rig: (the exception, the command records published, the
    recorded /commands row of the arm as {result, args})."""
    dev = RefusingDevice()
    dev.refuse_code, dev.refuse_reason = code, reason
    dev.start()
    rig = Rig.clinical({"light": dev.port})
    tap = Tap()
    try:
        rig.start_recording(tmp_path, patient_pseudonym="PX-0001", operator_id="op", protocol_id="p",
                            protocol_version="1")
        rig.bus.subscribe(tap)
        with pytest.raises(CommandRefused) as refused:
            rig.devices["light"].arm(True)
        wait_for(lambda: any(c.command == "arm" for c in tap.commands), what="the arm's command record")
    finally:
        path, _ = rig.close()
        dev.stop()
    with h5py.File(path, "r") as f:
        rows = f["commands"][:]
    arm = [r for r in rows if _s(r["command"]) == "arm" and _s(r["result"]).startswith("refused")]
    assert len(arm) == 1, rows
    return refused.value, [c for c in tap.commands if c.command == "arm"], {
        "result": _s(arm[0]["result"]), "args": json.loads(_s(arm[0]["args_json"]))}


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def test_an_unclean_refusal_reason_keeps_the_device_bytes_in_the_recording(tmp_path):
    exc, records, row = _refused_arm(tmp_path, p.Refusal.BAD_STATE, UNCLEAN)
    # cleaned as a FAULT's or STATUS's words: control characters spaces, a byte that is not UTF-8 `?`
    assert exc.reason == p.text(UNCLEAN) and "\x1b" not in exc.reason and "?" in exc.reason
    # the original bytes, under the one key the other device texts use, with the command in the file
    assert row["args"]["raw_text_hex"] == UNCLEAN.hex() and bytes.fromhex(row["args"]["raw_text_hex"]) == UNCLEAN
    assert row["args"]["on"] is True  # the command's own args are kept beside it
    assert records[0].args["raw_text_hex"] == UNCLEAN.hex()


def test_a_clean_refusal_reason_adds_nothing(tmp_path):
    _exc, records, row = _refused_arm(tmp_path, p.Refusal.NOT_ARMED, b"Not armed: ARM before START.")
    assert "raw_text_hex" not in row["args"] and "raw_text_hex" not in records[0].args
    assert row["result"] == "refused: Not armed: ARM before START. (the device is not armed)"


def test_the_refusal_code_is_said_in_words_never_by_its_name(tmp_path):
    exc, records, row = _refused_arm(tmp_path, p.Refusal.BAD_STATE, b"Already active: STOP first.")
    words = p.REFUSAL_WORDS[p.Refusal.BAD_STATE]
    assert str(exc) == f"the device refused arm: Already active: STOP first. ({words})"
    assert row["result"] == f"refused: Already active: STOP first. ({words})"
    lines: list[str] = []
    ProgressPrinter(lines.append).on_command(records[0])  # what the headless runner prints for it
    for text in (str(exc), row["result"], *lines):
        assert "BAD_STATE" not in text and "(code" not in text and "(6)" not in text, text
    assert lines and words in lines[0]


def test_every_refusal_code_has_words_and_an_unknown_code_is_said_as_such(tmp_path):
    assert set(p.REFUSAL_WORDS) == set(p.Refusal)
    for code in p.Refusal:
        words = p.refusal_words(code)
        assert words and code.name not in words and "_" not in words
        assert code.name not in str(CommandRefused("start", code, "no"))
    assert "200" in p.refusal_words(200) and "does not know" in p.refusal_words(200)
    exc, _records, row = _refused_arm(tmp_path, 200, b"")  # a code the protocol does not define, no reason
    assert str(exc) == f"the device refused arm: {p.refusal_words(200)}"
    assert row["result"] == f"refused: {p.refusal_words(200)}"
