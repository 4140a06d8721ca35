"""Property test (hypothesis): random field values in every frame type a device can send, straight into the driver's
frame handler. No exception escapes, and nothing published is implausible or empty."""

from __future__ import annotations

import json
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers import protocol as p
from drivers.light import UVB308Light
from drivers.pen import MicroneedlingPen
from tests.conftest import Tap
from workstation.bus import SessionBus

u8, u16, u32, u64 = (st.integers(0, 2**k - 1) for k in (8, 16, 32, 64))
i16 = st.integers(-(2**15), 2**15 - 1)
tail = st.binary(max_size=40)
flags = st.integers(0, 7) | u8  # mostly known bits, so that frames also get past the decoder to the range checks


def _light_sample():
    return st.tuples(u16, u32, i16, flags, u16).map(lambda s: struct.pack("<HIhBH", *s))


def _pen_sample():
    return st.tuples(u16, u16, u16, u16, flags, u16).map(lambda s: struct.pack("<HHHHBH", *s))


def _telemetry(sample):
    """A header with any values, any number of samples, and n that may or may not match them."""
    return st.tuples(u64, u16, st.lists(sample, max_size=30), st.one_of(st.none(), u8), u32).map(
        lambda h: struct.pack("<QHBI", h[0], h[1], len(h[2]) if h[3] is None else h[3], h[4]) + b"".join(h[2]))


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                     max_leaves=8)
_identity = st.tuples(u16, st.one_of(
    st.dictionaries(st.sampled_from(["model", "serial_number", "firmware", "protocol_version", "kind",
                                     "calibration"]), _json, max_size=6).map(json.dumps),
    _json.map(json.dumps), st.text(max_size=20))).map(lambda t: struct.pack("<H", t[0]) + t[1].encode())


def _frames(sample):
    return st.one_of(
        st.tuples(st.just(p.Msg.TELEMETRY), _telemetry(sample)),
        st.tuples(st.just(p.Msg.ACK), st.binary(max_size=4)),
        st.tuples(st.just(p.Msg.REFUSE), st.tuples(u16, u8, tail).map(
            lambda r: struct.pack("<HB", r[0], r[1]) + r[2]) | st.binary(max_size=3)),
        st.tuples(st.just(p.Msg.IDENTITY), _identity),
        st.tuples(st.just(p.Msg.FAULT), st.tuples(u16, u16, tail).map(
            lambda f: struct.pack("<HH", f[0], f[1]) + f[2]) | st.binary(max_size=4)),
        st.tuples(st.just(p.Msg.STATUS), st.tuples(u8, u8, tail).map(
            lambda f: struct.pack("<BB", f[0], f[1]) + f[2]) | st.binary(max_size=2)),
        st.tuples(u8, st.binary(max_size=60)),  # any type at all
    )


def _driver(cls):
    bus, tap = SessionBus(), Tap()
    bus.subscribe(tap)
    drv = cls("/nonexistent/port", bus=bus)
    drv._ready = True  # as after a good identity: telemetry goes through every check to the bus
    return drv, tap


def _check(drv, tap, frames):
    for i, (msg_type, payload) in enumerate(frames):
        drv._handle_contained(p.Frame(int(msg_type), i, payload), 100.0 + i * 0.01)  # raises nothing
    published = tap.blocks.get(drv.name, [])
    for block in published:
        assert len(block)
        for c in drv.INFO.channels:
            v = block[c.name].astype(np.float64)
            assert (v >= c.minimum).all() and (v <= c.maximum).all(), c.name


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(_frames(_light_sample()), min_size=1, max_size=8))
def test_no_light_frame_escapes_the_handler(frames):
    _check(*_driver(UVB308Light), frames)


@SETTINGS
@given(st.lists(_frames(_pen_sample()), min_size=1, max_size=8))
def test_no_pen_frame_escapes_the_handler(frames):
    _check(*_driver(MicroneedlingPen), frames)
