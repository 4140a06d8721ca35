"""Property tests of the wire framing: round trips, and recovery from arbitrary corruption."""

import binascii

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import protocol as p
from drivers.light import UVB308Light
from drivers.pen import MicroneedlingPen

payloads = st.binary(min_size=0, max_size=600)


@given(payloads)
def test_cobs_round_trip_and_no_zero(data):
    enc = p.cobs_encode(data)
    assert 0 not in enc
    assert p.cobs_decode(enc) == data
    assert len(enc) <= len(data) + len(data) // 254 + 2


@given(st.integers(0, 255), st.integers(0, 0xFFFF), payloads)
def test_frame_round_trip(msg_type, seq, payload):
    frame = p.encode_frame(msg_type, seq, payload)
    assert frame.endswith(b"\x00") and frame.count(0) == 1
    got = p.decode_frame(frame[:-1])
    assert (got.type, got.seq, got.payload) == (msg_type, seq, payload)


def test_crc_is_ccitt_false():
    assert p.crc16(b"123456789") == 0x29B1 == binascii.crc_hqx(b"123456789", 0xFFFF)


def _feed_in_reads(dec: p.FrameDecoder, stream: bytes, sizes: list[int]) -> list[p.Frame]:
    """Feed `stream` as a port's reads happen to return it, `sizes` bytes at a time (cycled); the frames decoded."""
    got, pos, k = [], 0, 0
    while pos < len(stream):
        n = sizes[k % len(sizes)]
        got += dec.feed(stream[pos : pos + n])
        pos, k = pos + n, k + 1
    return got


@given(st.lists(payloads, min_size=1, max_size=30), st.data())
@settings(max_examples=200, deadline=None)  # no per-example deadline: CI machines are shared
def test_decoder_survives_corruption_and_loses_only_hit_frames(frame_payloads, data):
    """Corrupt random bytes of a stream; every frame not touched by corruption still decodes, in order."""
    frames = [p.encode_frame(0x90, i, pl) for i, pl in enumerate(frame_payloads)]
    stream = bytearray(b"".join(frames))
    bounds, pos = [], 0
    for f in frames:
        bounds.append((pos, pos + len(f)))
        pos += len(f)
    hits = data.draw(st.sets(st.integers(0, len(stream) - 1), max_size=max(1, len(stream) // 50)))
    for i in hits:
        stream[i] ^= data.draw(st.integers(1, 255))
    # a frame is intact if none of its bytes was hit and the delimiter before it (if any) was not hit either
    intact = [
        i for i, (a, b) in enumerate(bounds)
        if not any(a <= h < b for h in hits) and (i == 0 or (bounds[i - 1][1] - 1) not in hits)
    ]
    dec = p.FrameDecoder()
    got = _feed_in_reads(dec, bytes(stream), data.draw(st.lists(st.integers(1, 64), min_size=1, max_size=10)))
    got_seqs = [f.seq for f in got]
    for i in intact:
        assert i in got_seqs
    # nothing is ever invented: whatever decodes passed its CRC and carries a payload we sent
    for f in got:
        assert f.payload in frame_payloads
    assert dec.frames == len(got)


def test_decoder_counts_bad_frames_and_drops_endless_garbage():
    dec = p.FrameDecoder()
    good = p.encode_frame(0x90, 7, b"abc")
    bad = bytearray(good)
    bad[2] ^= 0x55
    assert [f.seq for f in dec.feed(good + bytes(bad) + good)] == [7, 7]
    assert dec.bad_frames == 1 and dec.resyncs == 1 and dec.cut_at_start_bytes == 0
    dec.feed(b"\x01" * (3 * p.MAX_FRAME_BYTES))  # no delimiter at all: discarded, not buffered forever
    assert dec.bad_frames == 2
    assert [f.seq for f in dec.feed(b"\x00" + good)] == [7]


@given(st.lists(payloads, min_size=1, max_size=12), st.data())
@settings(max_examples=200, deadline=None)
def test_a_receiver_that_starts_mid_stream_counts_no_bad_frame(frame_payloads, data):
    """A port opened while the device talks: the end of the frame already under way is not a bad frame (CI saw one,
    `test_baud_throttle_limits_the_byte_rate`, when load held the host's open back); every frame after it decodes."""
    frames = [p.encode_frame(0x90, i, pl) for i, pl in enumerate(frame_payloads)]
    stream = b"".join(frames)
    cut = data.draw(st.integers(0, len(stream) - 1))
    starts = np.cumsum([0] + [len(f) for f in frames])
    whole = [i for i, a in enumerate(starts[:-1]) if a >= cut]
    dec = p.FrameDecoder()
    got = _feed_in_reads(dec, stream[cut:], data.draw(st.lists(st.integers(1, 64), min_size=1, max_size=8)))
    first_whole = starts[whole[0]] if whole else len(stream)
    cut_end = stream[cut : max(cut, first_whole - 1)]  # the cut frame's bytes before its delimiter
    try:  # a cut end that passes COBS and its CRC by chance (about 1 in 65 536) is a frame: the CRC's own limit
        by_chance = [p.decode_frame(cut_end).seq] if cut_end else []
    except p.FrameError:
        by_chance = []
    assert [f.seq for f in got] == by_chance + whole
    assert dec.bad_frames == 0 and dec.resyncs == 0
    assert dec.cut_at_start_bytes == (0 if by_chance else len(cut_end))


def test_only_the_start_of_a_stream_is_taken_for_a_cut_frame():
    good = p.encode_frame(0x90, 7, b"abc")
    dec = p.FrameDecoder()
    assert [f.seq for f in dec.feed(good[3:] + good + good[3:] + good)] == [7, 7]  # cut at the start, then mid-stream
    assert dec.cut_at_start_bytes == len(good) - 4 and dec.bad_frames == 1
    dec = p.FrameDecoder()
    dec.feed(b"\x01" * (3 * p.MAX_FRAME_BYTES))  # no delimiter at all, even at the start: garbage, a bad frame
    assert dec.bad_frames == 1 and dec.cut_at_start_bytes == 0
    assert [f.seq for f in dec.feed(b"\x00" + good[3:] + good)] == [7]  # after garbage, a broken frame is bad
    assert dec.bad_frames == 2


def test_telemetry_layout_round_trip():
    header = np.zeros(1, p.LIGHT_HEADER)
    header[0] = (1_000_000, 500, 3, 300_000)
    s = np.zeros(3, p.LIGHT_SAMPLE)
    s["irradiance_cmw"] = [10000, 10050, 9990]
    s["dose_udose"] = [1000, 2000, 3000]
    s["lamp_temp_cc"] = [-150, 2500, 3000]
    s["flags"] = [p.FLAG_ACTIVE | p.FLAG_CONTACT, p.FLAG_CONTACT, p.FLAG_ARMED]
    s["faults"] = [0, p.LightFault.OVER_TEMPERATURE, 0]
    block = UVB308Light.decode_telemetry(p.telemetry_payload(header, s), 42, 12.5)
    assert block["t_device_us"].tolist() == [1_000_000, 1_000_500, 1_001_000]
    assert block["irradiance_mw_cm2"].tolist() == pytest.approx([100.0, 100.5, 99.9])
    assert block["dose_mj_cm2"].tolist() == pytest.approx([1.0, 2.0, 3.0])
    assert block["target_dose_mj_cm2"].tolist() == pytest.approx([300.0] * 3)
    assert block["lamp_temp_c"].tolist() == pytest.approx([-1.5, 25.0, 30.0])
    assert block["shutter_open"].tolist() == [1, 0, 0]
    assert block["skin_contact"].tolist() == [1, 1, 0]
    assert block["armed"].tolist() == [0, 0, 1]
    assert block["fault_bits"].tolist() == [0, 2, 0]
    assert (block["seq"] == 42).all() and (block["t_host_s"] == 12.5).all()
    with pytest.raises(p.FrameError):
        UVB308Light.decode_telemetry(p.telemetry_payload(header, s)[:-1], 0, 0.0)


def test_pen_telemetry_layout_round_trip():
    header = np.zeros(1, p.PEN_HEADER)
    header[0] = (5, 500, 2, 123456)
    s = np.zeros(2, p.PEN_SAMPLE)
    s["depth_set_um"] = [1500, 1500]
    s["depth_um"] = [1490, 1502]
    s["stroke_rate_chz"] = [11700, 11650]
    s["motor_current_dma"] = [2505, 2600]
    s["flags"] = [p.FLAG_ACTIVE | p.FLAG_ARMED, 0]
    block = MicroneedlingPen.decode_telemetry(p.telemetry_payload(header, s), 1, 0.0)
    assert block["depth_set_mm"].tolist() == pytest.approx([1.5, 1.5])
    assert block["depth_mm"].tolist() == pytest.approx([1.49, 1.502])
    assert block["stroke_rate_hz"].tolist() == pytest.approx([117.0, 116.5])
    assert block["motor_current_ma"].tolist() == pytest.approx([250.5, 260.0])
    assert block["running"].tolist() == [1, 0] and block["armed"].tolist() == [1, 0]
    assert (block["cartridge_strokes"] == 123456).all()


def test_one_decoder_reads_the_wire_as_the_channels_declare():
    """The decoder is built from the declarations: a block field no channel says how to read is refused when the
    decoder is built (so when the driver class is defined), naming the field, never decoded as garbage."""
    from drivers.channels import LIGHT_CHANNELS
    from drivers.types import Wire

    decode = p.telemetry_decoder(p.LIGHT_HEADER, p.LIGHT_SAMPLE, p.LIGHT_BLOCK, LIGHT_CHANNELS)
    header = np.zeros(1, p.LIGHT_HEADER)
    header[0] = (0, 500, 1, 7000)
    s = np.zeros(1, p.LIGHT_SAMPLE)
    s["irradiance_cmw"] = 12345
    block = decode(p.telemetry_payload(header, s), 3, 1.0)
    assert block["irradiance_mw_cm2"][0] == pytest.approx(123.45) and block["target_dose_mj_cm2"][0] == 7.0
    without = tuple(c for c in LIGHT_CHANNELS if c.name != "lamp_temp_c")
    with pytest.raises(ValueError, match="lamp_temp_c"):
        p.telemetry_decoder(p.LIGHT_HEADER, p.LIGHT_SAMPLE, p.LIGHT_BLOCK, without)
    wrong = tuple(c if c.name != "dose_mj_cm2" else type(c)(c.name, c.unit, c.description, wire=Wire("dose"))
                  for c in LIGHT_CHANNELS)
    with pytest.raises(ValueError, match="'dose'"):
        p.telemetry_decoder(p.LIGHT_HEADER, p.LIGHT_SAMPLE, p.LIGHT_BLOCK, wrong)


def test_an_identity_s_json_escapes_cannot_carry_surrogates_or_control_characters(tmp_path):
    """From the fresh tester of issue 12: an IDENTITY whose texts end in the JSON escapes \\u0000\\udc80\\u0007 (valid
    UTF-8 bytes, so not refused as unreadable) crashed the session in the store and the log; \\u001b[2J reached the
    terminal. Every text of the identity is cleaned as the device's other words are, and the store takes it."""
    import json

    from workstation.store import ClinicStore
    from workstation.store import calibration as cal

    sent = {"kind": "light", "model": "UVB-308\\u001b[2J", "serial_number": "S-1\\u0000\\udc80\\u0007",
            "firmware": "1.0\\u0000\\u0000", "protocol_version": 1, "calibration": {"note\\udc80": "ok\\u0007"}}
    raw = json.dumps(sent).replace("\\\\u", "\\u").encode()  # the escapes as the device wrote them
    info = p.parse_identity(p.ACK_PAYLOAD.pack(1) + raw)
    assert info["model"] == "UVB-308 [2J" and info["serial_number"] == "S-1 ?" and info["firmware"] == "1.0"
    assert info["calibration"] == {"note?": "ok"}
    for value in (info["model"], info["serial_number"], info["firmware"]):
        value.encode("utf-8")  # no lone surrogate left
        assert not any(ord(ch) < 32 for ch in value)
    with ClinicStore.open(tmp_path / "s.sqlite3", training=True) as store:
        cal.record_device(store, info, "light")
        assert [d.serial_number for d in cal.devices(store)] == ["S-1 ?"]
    # fourth fresh tester: what the cleaning changed was lost (keys "a" and "a\0" met as one, "v\0w" became "v w"):
    # the device's own JSON goes with it, whole
    assert bytes.fromhex(info[p.RAW_IDENTITY_KEY]) == raw
    hostile = b'{"model": "M", "a": 1, "a\\u0000": 2, "k\\u0000": "v\\u0000w", "x.y\\u0000": 5}'
    info = p.parse_identity(p.ACK_PAYLOAD.pack(1) + hostile)
    assert json.loads(bytes.fromhex(info[p.RAW_IDENTITY_KEY])) == {"model": "M", "a": 1, "a\0": 2, "k\0": "v\0w",
                                                                   "x.y\0": 5}
    clean = b'{"model": "M", "serial_number": "S", "protocol_version": 1}'
    assert p.RAW_IDENTITY_KEY not in p.parse_identity(p.ACK_PAYLOAD.pack(1) + clean)  # nothing changed: nothing added
