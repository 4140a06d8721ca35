"""`main.py audit` over telemetry the recorder itself lost (the file's `/losses`; a tester: a session recorded on a
disk that filled to the last byte was audited "EXTRA (made now, not recorded): telemetry_lost on light at 2.070 s …
the trips DIFFER", exit 1: the silence the replayed watchdog judged was the 540 samples the recorder had counted
lost, not a silence of the light). A stretch the recorder lost is not judged on that device, from its first lost
sample until the device is seen inactive again (or to the end): the audit names it and ends NOT JUDGED IN FULL
(exit 3), while the other device, and the trips not judged on samples (an E-stop), are judged as ever.

Every recording here is written by the project's recorder behind a live safety monitor on one bus, as the rig wires
them: the monitor sees every frame the devices send, the recorder keeps what it can and counts the rest in
`/losses` (its queue ceiling in the middle or at the end of a file; a real full disk, on a tmpfs, when root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers_recording import FRAME, LIGHT_INFO, PEN_INFO, add_devices, frames, meta
from test_recording_edges import small_disk

from drivers.types import DriverInfo
from workstation.bus import SessionBus, now_s
from workstation.recording import Recording, SessionRecorder
from workstation.session.safety import SafetyMonitor, StepLimits

ROOT = Path(__file__).resolve().parents[1]
# light and needling allowed; the synthetic lamp's 35–45 °C stays under this limit, its dose under this target
ALLOWED = StepLimits("cheek", light_allowed=True, needling_allowed=True, target_dose_mj_cm2=500.0,
                     area_dose_cap_mj_cm2=10_000.0, depth_limit_mm=2.0, max_lamp_temp_c=60.0)
ACTIVE = {"light": "shutter_open", "needling": "running"}  # what the drivers declare (workstation/session/roles.py)


class _Device:
    """A synthetic device the live monitor stops (its telemetry is the helpers' generator, published by the test)."""

    def __init__(self, info: DriverInfo, live: _Live) -> None:
        self.INFO, self.active_channel, self.live = info, ACTIVE[info.kind], live

    def stop_now(self, why: str) -> float:
        return self.live.t

    def inhibit_starts(self, owner, why):
        self.inhibits = {**getattr(self, "inhibits", {}), owner: why}

    def allow_starts(self, owner):
        getattr(self, "inhibits", {}).pop(owner, None)


class _Live:
    """A session's bus: the safety monitor subscribed first (its clock the telemetry's host time), then the recorder.
    Session time 0 is now on the host clock (the recorder stamps its own alarms with it): frame k of a device arrives
    (k + 1) × 10 ms later (helpers_recording), sent as fast as the test goes."""

    def __init__(self, directory: Path, limits: StepLimits = ALLOWED, **recorder: object) -> None:
        self.t = self.t0 = now_s()
        self.bus = SessionBus()
        self.monitor = SafetyMonitor(self.bus, {"light": _Device(LIGHT_INFO, self), "pen": _Device(PEN_INFO, self)},
                                     clock=lambda: self.t)
        self.bus.subscribe(self.monitor)
        self.rec = SessionRecorder.create(directory, meta(), min_free_bytes=0, t0_host_s=self.t0, **recorder)
        add_devices(self.rec)
        self.bus.subscribe(self.rec)
        self.monitor.set_limits(limits)

    def send(self, device: str, k: int, change=None) -> None:
        """Frame k of the device, as it sends it (`change` edits it first), to every sink on the bus."""
        block = frames(device, k, 1, self.t0)[0]
        if change is not None:
            change(block)
        self.t = max(self.t, float(block["t_host_s"][-1]))
        self.bus.publish_block(device, block)


def _audit(path: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "main.py", "audit", str(path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout


def _result(out: str) -> str:
    return out.rstrip().splitlines()[-1]


def _lit(block: np.ndarray) -> None:  # the light emitting, whatever the generator's 10-s cycle says
    block["shutter_open"], block["irradiance_mw_cm2"] = 1, 40.0


def _dark(block: np.ndarray) -> None:  # the light stopped (after the E-stop)
    block["shutter_open"], block["irradiance_mw_cm2"], block["dose_mj_cm2"] = 0, 0.0, 0.0


def _deep(block: np.ndarray) -> None:  # the pen past the area's 2 mm limit
    block["depth_mm"] = 2.4


def _ceiling_in_the_middle(directory: Path, pen_too_deep_unseen: bool) -> Path:
    """The light's frames 100-149 (1.01-1.50 s, an exposure under way, its target of 50 mJ/cm² passed at 1.28 s)
    past the recorder's queue ceiling: lost, counted in `/losses`; the pen's all kept. The live monitor saw every
    frame and tripped `target_dose_reached` on the light at 1.28 s. With `pen_too_deep_unseen`, the pen's frames
    110-120 are too deep but reach the recorder only (a monitor that did not judge them): a trip this monitor would
    add, on the device whose telemetry is whole, in the stretch the light's is not."""
    light_bytes, pen_bytes = frames("light", 0, 1)[0].nbytes, frames("pen", 0, 1)[0].nbytes
    live = _Live(directory, replace_limits(target_dose_mj_cm2=50.0), queue_alarm_rows=10**9,
                 queue_ceiling_bytes=100 * light_bytes + 150 * pen_bytes)
    for k in range(150):  # the writer not started yet: the queue fills as if the disk had stalled
        if pen_too_deep_unseen and 110 <= k <= 120:
            block = frames("pen", k, 1, live.t0)[0]
            _deep(block)
            live.rec.on_block("pen", block)
        else:
            live.send("pen", k)
    for k in range(150):
        live.send("light", k)  # 100 of them kept, then the ceiling
    live.rec.start()
    for k in range(150, 700):  # the exposure ends at 5 s (the generator's cycle), the session goes on to 7 s
        if k % 50 == 0:  # the writer keeps up from here on: never more than the ceiling waits for it
            _drained(live.rec)
        live.send("light", k)
        live.send("pen", k)
    live.rec.close()
    with Recording.open(live.rec.path) as r:  # what the file holds: a loss on the light only, in the middle
        assert r.samples_lost("light") == 50 * FRAME and r.samples_lost("pen") == 0
        ((first, last, _n),) = r.losses("light").tolist()
        assert (round(first - live.t0, 6), round(last - live.t0, 6)) == (1.01, 1.5)
        assert [e.details["interlock"] for e in r.events if e.kind == "interlock"] == ["target_dose_reached"]
        assert not r.partial
    return live.rec.path


def _drained(rec: SessionRecorder) -> None:
    deadline = time.monotonic() + 30
    while rec.queued_samples and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not rec.queued_samples, "the writer did not take its queue in 30 s"


def replace_limits(**changes: object) -> StepLimits:
    return replace(ALLOWED, **changes)


def test_a_loss_in_the_middle_is_not_judged_on_its_device_only(tmp_path: Path) -> None:
    code, out = _audit(_ceiling_in_the_middle(tmp_path, pen_too_deep_unseen=False))
    assert code == 3, out
    assert "EXTRA" not in out and "MISSING" not in out, out
    # which stretch, of which device, and why, in words
    assert ("LOST BY THE RECORDER from 1.010 s to the end: 1000 samples of the light's telemetry lost by the recorder "
            "(the queue ceiling) between 1.010 s and 1.500 s") in out, out
    # the trip the live monitor made on a sample the file does not hold: set apart, not "MISSING"
    assert "not judged (recorded; its telemetry there was lost by the recorder): target_dose_reached on light" in out
    assert _result(out) == ("result: the same trips where they could be judged; NOT JUDGED IN FULL: the light's "
                            "telemetry from 1.010 s to the end (lost by the recorder)"), out
    assert "pen" not in _result(out)


def test_the_other_devices_telemetry_is_still_judged_over_the_same_stretch(tmp_path: Path) -> None:
    code, out = _audit(_ceiling_in_the_middle(tmp_path, pen_too_deep_unseen=True))
    assert code == 1, out
    extra = [line for line in out.splitlines() if line.startswith("  EXTRA")]
    assert len(extra) == 1 and "depth_limit on pen at 1.113 s" in extra[0], out
    assert "telemetry_lost on light" not in "\n".join(extra) and "MISSING" not in out, out
    assert _result(out) == "result: the trips DIFFER", out


def test_a_loss_at_the_end_of_a_whole_file_is_not_judged_to_its_end(tmp_path: Path) -> None:
    """The queue ceiling reached at the end (the file closed cleanly, not partial): the light's last 40 frames were
    lost while it emitted, and the E-stop that ended the session came 0.4 s after its last frame in the file."""
    light_bytes, pen_bytes = frames("light", 0, 1)[0].nbytes, frames("pen", 0, 1)[0].nbytes
    live = _Live(tmp_path, queue_alarm_rows=10**9, queue_ceiling_bytes=200 * (light_bytes + pen_bytes))
    for k in range(240):
        live.send("light", k)
        live.send("pen", k)
    live.monitor.estop("operator")
    for k in range(240, 250):
        live.send("light", k, _dark)
        live.send("pen", k)
    live.rec.start()
    live.rec.close()
    with Recording.open(live.rec.path) as r:
        assert not r.partial and r.samples_lost("light") == 50 * FRAME
    code, out = _audit(live.rec.path)
    assert code == 3, out
    assert "reproduced: estop on light" in out and "reproduced: estop on pen" in out, out
    assert "EXTRA" not in out and "MISSING" not in out, out
    assert _result(out) == ("result: the same trips where they could be judged; NOT JUDGED IN FULL: the light's "
                            "telemetry from 2.010 s to the end and the pen's telemetry from 2.013 s to the end (lost "
                            "by the recorder)"), out


class _Parked:
    """The recorder's flush callback: while `hold` is set it keeps the writer there (`parked`), so what is published
    meanwhile waits in the queue, as behind a stalled disk."""

    def __init__(self) -> None:
        self.hold, self.parked = threading.Event(), threading.Event()

    def __call__(self, _rows: dict) -> None:
        while self.hold.is_set():
            self.parked.set()
            time.sleep(0.001)
        self.parked.clear()


def _idle_loss(directory: Path, light_unseen: bool) -> Path:
    """The light's frames 600-649 (6.01-6.50 s: between its exposures, idle) past the queue ceiling; the pen's kept.
    The light emits again from 10 s; with `light_unseen`, its frames 1100-1104 show the handpiece off the skin but
    reach the recorder only (a monitor that did not judge them): after the loss, which ended with the light idle."""
    parked = _Parked()
    live = _Live(directory, queue_alarm_rows=10**9, queue_ceiling_bytes=50 * frames("pen", 0, 1)[0].nbytes,
                 flush_interval_s=0.01, on_flush=parked)
    live.rec.start()
    for k in range(1200):
        if k == 600:  # the writer held up: the pen's next 50 frames fill the queue, the light's are lost
            _drained(live.rec)  # an empty queue, then nothing published until the writer is held
            parked.hold.set()
            assert parked.parked.wait(10)
            assert not live.rec.queued_samples
            for j in range(600, 650):
                live.send("pen", j)
            for j in range(600, 650):
                live.send("light", j)
            parked.hold.clear()
            continue
        if 600 < k < 650:
            continue
        if k % 10 == 0:
            _drained(live.rec)
        if light_unseen and 1100 <= k < 1105:
            block = frames("light", k, 1, live.t0)[0]
            block["skin_contact"] = 0
            live.rec.on_block("light", block)
        else:
            live.send("light", k)
        live.send("pen", k)
    live.rec.close()
    with Recording.open(live.rec.path) as r:
        assert r.samples_lost("light") == 50 * FRAME and r.samples_lost("pen") == 0 and not r.partial
        assert not [e for e in r.events if e.kind == "interlock"]
    return live.rec.path


@pytest.mark.parametrize("light_unseen", [False, True])
def test_a_loss_ends_where_the_device_is_seen_idle_again_and_what_follows_is_judged(tmp_path: Path,
                                                                                  light_unseen: bool) -> None:
    code, out = _audit(_idle_loss(tmp_path, light_unseen))
    assert ("LOST BY THE RECORDER from 6.010 s to 6.510 s: 1000 samples of the light's telemetry lost by the recorder "
            "(the queue ceiling) between 6.010 s and 6.500 s") in out, out
    assert "until it is seen inactive again" in out, out
    if light_unseen:  # a trip this monitor adds on the light after its loss is judged: the trips differ
        assert code == 1 and _result(out) == "result: the trips DIFFER", out
        (extra,) = [line for line in out.splitlines() if line.startswith("  EXTRA")]
        assert "contact_lost on light at 11.010 s" in extra, out
    else:
        assert code == 3, out
        assert _result(out) == ("result: the same trips where they could be judged; NOT JUDGED IN FULL: the light's "
                                "telemetry from 6.010 s to 6.510 s (lost by the recorder)"), out


def test_a_loss_whose_times_cannot_be_read_reaches_the_whole_recording(tmp_path: Path) -> None:
    """A damaged or edited `/losses` row (its times NaN): the stretch is widened to the recording's start and end,
    said so in words (never "nan s"), and still not judged."""
    path = _idle_loss(tmp_path, light_unseen=False)
    with h5py.File(path, "r+") as f:
        losses = f["devices/light/losses"]
        row = losses[0]
        row["t_first_host_s"], row["t_last_host_s"] = np.nan, np.nan
        losses[0] = row
    code, out = _audit(path)
    assert code == 3 and "nan" not in out.lower().replace("non-finite", ""), out
    assert ("LOST BY THE RECORDER from the start to the end: 1000 samples of the light's telemetry lost by the "
            "recorder between the start and the end") in out, out
    assert _result(out).endswith("NOT JUDGED IN FULL: the light's telemetry from the start to the end (lost by the "
                                 "recorder)"), out


def test_a_disk_full_to_the_last_byte_mid_exposure_is_not_judged_after_the_recorder_stopped() -> None:
    """The tester's case, at the recorder: a real disk (a tmpfs) filled to the last byte by another program while
    the light emits; the recorder stops, the devices' frames after it are refused and counted lost, and the session's
    E-stop comes 0.3 s after the light's last frame in the file (written by the closing reopen)."""
    with small_disk("64m") as disk:
        errors: list[str] = []
        got = threading.Event()
        flushes = []

        def fill_at_the_second(rows: dict) -> None:
            flushes.append(rows)
            if len(flushes) == 2:
                with open(disk / "filler", "wb") as f:  # to the last byte
                    os.posix_fallocate(f.fileno(), 0, shutil.disk_usage(disk).free)

        live = _Live(disk, on_flush=fill_at_the_second, reserve_bytes=0,
                     on_error=lambda e: (errors.append(str(e)), got.set()))
        live.rec.start()
        k = 0
        while not got.is_set() and k < 2000:  # real time, the frames' own ten times faster
            live.send("light", k, _lit)
            live.send("pen", k)
            k += 1
            time.sleep(0.001)
        assert got.is_set() and "full" in errors[0], errors
        for j in range(k, k + 30):  # sent after the recording had stopped: refused, counted lost
            live.send("light", j, _lit)
            live.send("pen", j)
        live.monitor.estop("recording failed")
        for j in range(k + 30, k + 40):
            live.send("light", j, _dark)
            live.send("pen", j)
        live.rec.close()
        with Recording.open(live.rec.path) as r:
            assert r.partial and r.samples_lost("light") >= 30 * FRAME, r.partial_reason
            assert r.telemetry("light")["shutter_open"][-1] == 1  # emitting in its last sample in the file
            last = float(r.telemetry("light")["t_host_s"][-1]) - live.t0
            assert sum(e.kind == "interlock" for e in r.events) == 2  # the E-stop of both devices, in the file
        code, out = _audit(live.rec.path)
    assert code == 3, out
    assert "reproduced: estop on light" in out and "EXTRA" not in out and "MISSING" not in out, out
    (light,) = [line for line in out.splitlines() if "LOST BY THE RECORDER" in line and "of the light's" in line]
    start_s = float(light.split("LOST BY THE RECORDER from ")[1].split(" s to the end: ")[0])
    assert start_s > round(last, 3), out  # after its last sample in the file
    assert "sent after the recording had stopped" in light and light.endswith("not judged to the end"), out
    assert _result(out).startswith("result: the same trips where they could be judged in the ") and \
        "NOT JUDGED IN FULL: the light's telemetry from " in _result(out) and \
        _result(out).endswith(" (lost by the recorder); and the file is partial"), out
