"""A recording written from the real drivers talking to the device emulators over ptys, reopened value by value:
every block, event and command the bus carried is in the file, with the devices' identities."""

from __future__ import annotations

import time

import numpy as np
import pytest
from helpers_recording import meta

from drivers.emulators.lamp import LampParams
from drivers.emulators.light import LightEmulator
from drivers.emulators.pen import PenEmulator
from drivers.light import UVB308Light
from drivers.pen import MicroneedlingPen
from workstation.bus import SessionBus
from workstation.recording import SessionRecorder
from workstation.recording.reader import Recording


class Log:
    def __init__(self) -> None:
        self.blocks: dict[str, list[np.ndarray]] = {}
        self.events = []
        self.commands = []

    def on_block(self, device, block):
        self.blocks.setdefault(device, []).append(block.copy())

    def on_event(self, event):
        self.events.append(event)

    def on_command(self, record):
        self.commands.append(record)


@pytest.mark.slow
def test_recording_from_the_emulators(tmp_path):
    bus = SessionBus()
    with LightEmulator(seed=1, lamp=LampParams(warmup_s=0.05)) as le, PenEmulator(seed=1) as pe:
        light, pen = UVB308Light(le.port, bus=bus), MicroneedlingPen(pe.port, bus=bus)
        lid, pid = light.connect(), pen.connect()
        try:
            rec = SessionRecorder.create(tmp_path, meta("simulation"), min_free_bytes=0)
            rec.add_device("light", UVB308Light.INFO, lid, UVB308Light.BLOCK_DTYPE, lid.extra.get("calibration", {}))
            rec.add_device("pen", MicroneedlingPen.INFO, pid, MicroneedlingPen.BLOCK_DTYPE, {})
            rec.start()
            log = Log()
            bus.subscribe(log)
            bus.subscribe(rec)
            light.set_target_dose(30.0)
            pen.set_depth(0.5)
            light.arm()
            pen.arm()
            light.start()
            pen.start()
            bus.event("protocol", "info", "session", "Step 1: forehead.", area="forehead")
            time.sleep(1.0)
            pen.stop()
            light.stop()
            time.sleep(0.1)
            bus.unsubscribe(rec)
            bus.unsubscribe(log)
        finally:
            light.close()
            pen.close()
    digest = rec.close()
    assert len(digest) == 64

    with Recording.open(rec.path) as r:
        assert not r.partial
        for dev, ident, driver in (("light", lid, UVB308Light), ("pen", pid, MicroneedlingPen)):
            info = r.devices[dev]
            assert (info.model, info.serial_number, info.firmware) == (ident.model, ident.serial_number,
                                                                       ident.firmware)
            assert info.driver_name == driver.INFO.name and info.identity == ident.as_dict()
            assert info.units == {c.name: c.unit for c in driver.INFO.channels}
            sent = np.concatenate(log.blocks[dev])
            got = r.telemetry(dev)
            assert len(got) == len(sent) > 1500  # about 1 s at 2 kHz
            for name in sent.dtype.names:
                np.testing.assert_array_equal(got[name], sent[name], err_msg=f"{dev}.{name}")
        assert r.devices["light"].calibration == lid.extra["calibration"]
        assert r.events == log.events and any(e.kind == "protocol" for e in r.events)
        assert len(r.commands) == len(log.commands) >= 6
        for a, b in zip(r.commands, log.commands, strict=True):
            assert (a.t_host_s, a.device, a.command, a.args, a.result) == (b.t_host_s, b.device, b.command, b.args,
                                                                          b.result)
            assert a.t_reply_s == b.t_reply_s or (np.isnan(a.t_reply_s) and np.isnan(b.t_reply_s))
        assert np.any(r.telemetry("light")["shutter_open"] == 1) and np.any(r.telemetry("pen")["running"] == 1)
