"""Every interlock trips through the real drivers and the device emulators, and the device is off afterwards —
checked in the emulator's own state, not only in what the driver believes."""

import threading
import time
from dataclasses import dataclass, field

import pytest
import serial

from drivers.codes import InterlockCause
from drivers.protocol import StopReason
from drivers.silence import BLIND_LIMIT_FACTOR
from tests.conftest import Tap, wait_for
from workstation.bus import now_s
from workstation.session.rig import Rig
from workstation.session.safety import StepLimits

# Waits are not claims: a generous timeout only bounds how long a broken build hangs, and a loaded machine may need it.
WAIT_S = 10.0


@dataclass
class OrderTap(Tap):
    """A Tap that also keeps the order in which blocks and events reached it. Subscribed after the safety monitor,
    which the bus calls first on the reader's thread: a trip published before the tap got the block that caused it
    proves the stop was written before that block went any further, however slow the machine."""

    order: list[tuple] = field(default_factory=list)

    def on_block(self, device, block) -> None:
        super().on_block(device, block)
        self.order.append(("block", device, block))

    def on_event(self, event) -> None:
        super().on_event(event)
        self.order.append(("event", event))


@pytest.fixture
def sim():
    rig = Rig.simulation(seed=11, light_warmup_s=0.2)
    tap = OrderTap()
    rig.bus.subscribe(tap)
    time.sleep(0.3)  # lamp warm
    yield rig, tap
    rig.close()


# A host-side dose check acts on the block that crosses its threshold. How much dose passes the threshold depends on
# how fast the host reads and the device closes (one 10 ms frame + the 5 ms shutter + the host's scheduling), which
# is a timing figure: bench/interlock.py measures it (host latency, shutter latency). The tests below judge causality
# and the device's own record instead, which load cannot change.
SHUTTER_S = 0.005  # the emulated light's blade time (drivers/emulators/light.py)


def assert_stopped_on_the_block_that_crossed(rig, tap: OrderTap, ev, crossed) -> None:
    """The monitor tripped on the first light block that showed the cause (`crossed(block)`), wrote the stop before
    that block reached the next subscriber, and the device closed its shutter because of that stop, one blade time
    after receiving it (the emulator's own schedule)."""
    blocks = [(i, item[2]) for i, item in enumerate(tap.order) if item[0] == "block" and item[1] == "light"]
    i_first, first = next((i, b) for i, b in blocks if crossed(b))
    assert ev.details["cause_t_host_s"] == float(first["t_host_s"][-1])  # no block before it crossed
    i_trip = next(i for i, item in enumerate(tap.order) if item[0] == "event" and item[1] is ev)
    assert i_trip < i_first, "the stop was not written on the block that showed the cause"
    assert ev.details["cause_t_host_s"] <= ev.details["stop_written_t_host_s"]
    assert ev.details["stop"] == "stop written"
    st = rig.emulators["light"].state()
    assert st.shutter_closed_reason == StopReason.COMMAND and not st.active
    assert st.last_command_at["STOP"] <= st.shutter_closed_at <= st.last_command_at["STOP"] + SHUTTER_S + 1e-6


def _open_dose(block):
    on = block["shutter_open"].astype(bool)
    return float(block["dose_mj_cm2"][on].max()) if on.any() else 0.0


def light_limits(**kw):
    return StepLimits(**{"area_id": "A1", "light_allowed": True, "target_dose_mj_cm2": 2000.0, **kw})


def start_light(rig, limits, device_target=2000.0):
    light = rig.devices["light"]
    rig.monitor.set_limits(limits)
    light.set_target_dose(device_target)
    light.arm()
    light.start()
    wait_for(lambda: rig.emulators["light"].state().emitting, what="light emitting")


def start_pen(rig, limits, depth_mm=1.0):
    pen = rig.devices["pen"]
    rig.monitor.set_limits(limits)
    pen.set_depth(depth_mm)
    pen.set_stroke_rate(100)
    pen.arm()
    pen.start()


def tripped(tap, interlock, device, timeout_s=WAIT_S):
    def find():
        return next((e for e in tap.kinds("interlock")
                     if e.details["interlock"] == interlock and e.details["device"] == device), None)
    wait_for(find, timeout_s=timeout_s, what=f"{interlock} on {device}")
    return find()


def assert_off(rig, device, timeout_s=WAIT_S):
    emu = rig.emulators[device]

    def off() -> bool:  # one snapshot: active, shutter and irradiance of the same instant
        st = emu.state()
        return not st.active and (device != "light" or (st.irradiance_mw_cm2 == 0.0 and not st.shutter_open))
    wait_for(off, timeout_s=timeout_s, what=f"{device} off in the emulator")


def test_host_target_dose_interlock(sim):
    """The device was told 2000 but the plan says 20: the host stops it at 20 (a mis-set device cannot overdose)."""
    rig, tap = sim
    start_light(rig, light_limits(target_dose_mj_cm2=20.0), device_target=2000.0)
    ev = tripped(tap, InterlockCause.TARGET_DOSE, "light")
    assert_off(rig, "light")
    threshold = 20.0 + rig.monitor.limits.dose_tolerance_mj_cm2  # target + the monitor's tolerance
    assert ev.details["dose_mj_cm2"] >= threshold
    assert_stopped_on_the_block_that_crossed(rig, tap, ev, lambda b: _open_dose(b) >= threshold)
    assert rig.emulators["light"].state().dose_mj_cm2 < 2000.0  # the host's stop ended it, not the device's target


def test_area_dose_cap_interlock(sim):
    rig, tap = sim
    start_light(rig, light_limits(area_dose_before_mj_cm2=990.0, area_dose_cap_mj_cm2=1000.0))
    ev = tripped(tap, InterlockCause.AREA_DOSE_CAP, "light")
    assert_off(rig, "light")
    assert ev.details["cap_mj_cm2"] == 1000.0
    # the host-side backup; in a session the device's own target is capped at the area's allowance first
    allowance = 1000.0 - 990.0 + rig.monitor.limits.dose_tolerance_mj_cm2
    assert ev.details["area_dose_mj_cm2"] >= 990.0 + allowance
    assert_stopped_on_the_block_that_crossed(rig, tap, ev, lambda b: _open_dose(b) >= allowance)
    assert rig.emulators["light"].state().dose_mj_cm2 < 2000.0


def test_contact_lost_interlock(sim):
    rig, tap = sim
    start_light(rig, light_limits())
    rig.emulators["light"].contact_lost()
    tripped(tap, InterlockCause.CONTACT_LOST, "light")
    assert_off(rig, "light")


def test_host_over_temperature_interlock_acts_before_the_device(sim):
    """42.5 °C is above the host's 42 °C limit but below the device's own 45 °C cut-out: the host acts."""
    rig, tap = sim
    start_light(rig, light_limits())
    rig.emulators["light"].over_temperature(temp_c=43.0)
    ev = tripped(tap, InterlockCause.OVER_TEMPERATURE, "light")
    assert_off(rig, "light")
    assert ev.details.get("detected_by") != "device" and ev.details["lamp_temp_c"] > 42.0


def test_device_over_temperature_is_tripped_as_over_temperature(sim):
    rig, tap = sim
    start_light(rig, light_limits(max_lamp_temp_c=60.0))  # host limit out of the way: the device's own cut-out
    rig.emulators["light"].over_temperature()
    ev = tripped(tap, InterlockCause.OVER_TEMPERATURE, "light")
    assert ev.details["detected_by"] == "device"
    assert_off(rig, "light")


def test_lamp_failure_is_a_device_fault_interlock(sim):
    rig, tap = sim
    start_light(rig, light_limits())
    rig.emulators["light"].lamp_failure()
    tripped(tap, InterlockCause.DEVICE_FAULT, "light")
    assert_off(rig, "light")


def test_uv_on_a_pih_area_is_a_protocol_rule_trip(sim):
    """A step that allows no UV (a PIH area): an exposure started anyway is stopped at its first block."""
    rig, tap = sim
    light = rig.devices["light"]
    rig.monitor.set_limits(StepLimits(area_id="PIH-jaw", light_allowed=False, needling_allowed=True,
                                      depth_limit_mm=1.0))
    light.set_target_dose(2000)
    light.arm()
    light.start()
    ev = tripped(tap, InterlockCause.PROTOCOL_RULE, "light")
    assert_off(rig, "light")
    assert ev.details["area"] == "PIH-jaw"
    # the first block with the shutter open, judged before it went further (the dose that passed meanwhile is a
    # timing figure, bench/interlock.py: a dose bound here failed at load 8, 6.2 mJ/cm² for 5)
    assert_stopped_on_the_block_that_crossed(rig, tap, ev, lambda b: bool(b["shutter_open"].any()))


def test_depth_over_the_area_limit_trips_and_stops_the_pen(sim):
    rig, tap = sim
    start_pen(rig, StepLimits(area_id="forehead", needling_allowed=True, depth_limit_mm=0.5), depth_mm=1.0)
    ev = tripped(tap, InterlockCause.DEPTH_LIMIT, "pen")
    assert_off(rig, "pen")
    assert ev.details["limit_mm"] == 0.5


def test_motor_jam_is_a_device_fault_interlock(sim):
    rig, tap = sim
    start_pen(rig, StepLimits(area_id="A2", needling_allowed=True, depth_limit_mm=1.5))
    wait_for(lambda: rig.emulators["pen"].state().running, what="pen running")
    rig.emulators["pen"].motor_jam()
    tripped(tap, InterlockCause.DEVICE_FAULT, "pen")
    assert_off(rig, "pen")


def test_heartbeat_lost_device_watchdog_stops_and_host_trips(sim):
    """The host's safety monitor hangs: heartbeats stop, the device stops itself within 250 ms, the host trips."""
    rig, tap = sim
    start_light(rig, light_limits())
    rig.devices["light"].liveness = lambda: False
    t0 = time.monotonic()
    tripped(tap, InterlockCause.HEARTBEAT_LOST, "light")
    assert_off(rig, "light")
    st = rig.emulators["light"].state()
    # the device's 250 ms watchdog, not the host, stopped it: judged on the device's own record of the last heartbeat
    heard = max(st.last_heartbeat_at or 0.0, st.last_command_at.get("ARM", 0.0))
    assert st.shutter_closed_reason == StopReason.WATCHDOG
    # Never before 250 ms; at the latest the silence rule's wall-clock bound (drivers/silence.py: 250 ms seen, a look
    # up to 100 ms late still counts as looking, 4 x 250 ms whatever was seen). How promptly it stops (p99 256 ms on
    # this machine) is a figure of bench/watchdog.py (`device_watchdog_ms`), not of a test: 256.0 and 257.6 ms under
    # a busy loop failed a 256 ms bound here in 2 of 8 runs.
    assert 0.25 < st.shutter_closed_at - heard <= BLIND_LIMIT_FACTOR * 0.25 + SHUTTER_S + 0.001
    assert st.shutter_closed_at > t0


def test_telemetry_stall_trips_and_the_stop_still_reaches_the_device(sim):
    rig, tap = sim
    start_light(rig, light_limits())
    rig.emulators["light"].stall(True)
    tripped(tap, InterlockCause.TELEMETRY_LOST, "light")
    assert_off(rig, "light")  # commands still flow on a stalled device: the host's stop closed the shutter


def test_unplug_mid_exposure_trips_disconnected_and_the_device_stops_itself(sim):
    rig, tap = sim
    start_light(rig, light_limits())
    rig.emulators["light"].unplug()
    ev = tripped(tap, InterlockCause.DISCONNECTED, "light")
    assert ev.details["stop"].startswith("stop not written")  # the cable is gone...
    assert_off(rig, "light")  # ...and the device made itself safe
    # what the recording keeps is in words, not pyserial's or the OS's text (fresh tester of issue 12: "read failed:
    # device reports readiness to read but returned no data (device disconnected or multiple access on port?)")
    # The monitor is the bus's first sink: it trips on the link's `connection` event while that event is still on its
    # way to the later sinks (this tap), so the tap may get it after the trip (a loaded run: 3 of 6 at load 8-12)
    wait_for(lambda: [e for e in tap.events if e.kind == "connection" and "failed:" in e.message], WAIT_S,
             "the link's connection event")
    texts = [e.message for e in tap.events] + [str(e.details) for e in tap.events]
    texts += [c.result for c in tap.commands]
    lost = [e for e in tap.events if e.kind == "connection" and "failed:" in e.message]
    assert lost and all("the link broke" in e.message for e in lost), [e.message for e in lost]
    library = ("readiness to read", "multiple access", "Errno", "SerialException", "returned no data")
    assert not [t for t in texts if any(m in t for m in library)]


def test_estop_stops_both_devices_at_once(sim):
    rig, tap = sim
    start_pen(rig, StepLimits(area_id="A1", light_allowed=True, needling_allowed=True,
                              target_dose_mj_cm2=2000, depth_limit_mm=1.5))
    start_light(rig, light_limits(needling_allowed=True, depth_limit_mm=1.5))
    wait_for(lambda: rig.emulators["pen"].state().running, what="pen running")
    t_press = now_s()
    threading.Thread(target=rig.monitor.estop, args=("STOP button",)).start()
    tripped(tap, InterlockCause.ESTOP, "light")
    tripped(tap, InterlockCause.ESTOP, "pen")
    assert_off(rig, "light")
    assert_off(rig, "pen")
    # caused by the press, closed by its stop one blade time after the device received it (the device's record)
    st = rig.emulators["light"].state()
    assert st.shutter_closed_reason == StopReason.COMMAND
    assert t_press <= st.last_command_at["STOP"] <= st.shutter_closed_at <= st.last_command_at["STOP"] + SHUTTER_S + 1e-6
    assert rig.emulators["pen"].state().last_command_at["STOP"] >= t_press


def test_after_a_trip_no_restart_without_reset(sim):
    rig, tap = sim
    start_light(rig, light_limits())
    rig.emulators["light"].contact_lost()
    tripped(tap, InterlockCause.CONTACT_LOST, "light")
    assert_off(rig, "light")
    rig.emulators["light"].set_contact(True)
    time.sleep(0.1)
    assert not rig.emulators["light"].state().active  # contact back: still off, nothing restarts by itself
    assert rig.monitor.is_tripped("light")


def test_a_frozen_gui_thread_delays_no_trip(qtbot, sim):
    """The Qt event loop is blocked (a frozen GUI); contact drops 0.5 s into the freeze, and the GUI thread stays
    blocked until the trip and the closed shutter have happened (or 20 s have passed): both happen during the freeze,
    whatever the machine's load, so nothing of the safety path waits for the GUI thread."""
    from PyQt6.QtCore import QTimer

    rig, tap = sim
    start_light(rig, light_limits())
    froze = {}

    def done() -> bool:
        return bool(tap.kinds("interlock")) and not rig.emulators["light"].state().active

    def freeze():
        froze["start"] = now_s()
        threading.Timer(0.5, rig.emulators["light"].contact_lost).start()
        deadline = time.monotonic() + 20.0
        while not done() and time.monotonic() < deadline:
            time.sleep(0.01)  # the GUI thread does nothing else meanwhile
        froze["end"] = now_s()

    QTimer.singleShot(0, freeze)
    qtbot.waitUntil(lambda: "end" in froze, timeout=30000)
    ev = tripped(tap, InterlockCause.CONTACT_LOST, "light")
    st = rig.emulators["light"].state()
    assert froze["start"] < ev.t_host_s < froze["end"]
    assert froze["start"] < st.shutter_closed_at < froze["end"]
    assert st.injected_at["set_contact"] <= st.shutter_closed_at  # closed because of the lost contact
    assert st.shutter_closed_reason == StopReason.CONTACT_LOST or st.last_command_at["STOP"] >= st.injected_at[
        "set_contact"]


def test_a_failed_heartbeat_write_trips_disconnected_without_deadlocking_the_monitor(sim):
    """A write that fails reports the disconnect; the disconnect trips the monitor, which writes a STOP to the same
    device. Done under the write lock this deadlocked the driver and the monitor (the headless unplug scenario hung):
    nothing is published under that lock now. The monitor stays alive and the driver reconnects."""
    rig, tap = sim
    start_light(rig, light_limits())
    light = rig.devices["light"]
    light._serial.write = lambda _data: (_ for _ in ()).throw(serial.SerialException("write failed: EIO"))
    ev = tripped(tap, InterlockCause.DISCONNECTED, "light")
    assert "write failed" in ev.message
    wait_for(lambda: rig.monitor.alive(), what="monitor watchdog alive")
    t = now_s()
    wait_for(lambda: rig.monitor.alive() and now_s() - t > 0.3, what="monitor still alive 300 ms later")
    wait_for(lambda: light.connected and light.counters.reconnects == 1, what="reconnected")
    assert_off(rig, "light", timeout_s=1.0)  # the reconnect made it safe (and its own watchdog would have)
