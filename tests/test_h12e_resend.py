"""A device still active after a trip gets a second STOP, judged on the time the monitor was looking.

Fresh tester of issue 12: held up ~0.5 s right after an E-stop, the monitor read the samples queued meanwhile,
stamped with their late arrival, and raised "light was still active 100 ms after the estop interlock: stop sent
again" although the device had stopped in time. The time since the STOP now counts only while the monitor was
looking (drivers/silence.py); a device truly still active still gets the second STOP and the alarm, and a monitor that
cannot look at all still resends at the wall limit (RESEND_STOP_WALL_S).
"""

from __future__ import annotations

import threading

import pytest
from conftest import wait_for
from test_held_up import SCENARIO, hold_the_process
from test_safety import LIGHT_STEP, Collector, FakeDevice, light_block

from drivers.codes import InterlockCause
from workstation.bus import BaseSink, SessionBus
from workstation.recording.reader import Recording
from workstation.session.roles import active_channel
from workstation.session.safety import RESEND_STOP_AFTER_S, RESEND_STOP_WALL_S, SafetyMonitor
from workstation.session.scenario import load_scenario
from workstation.session.visit import Visit


def _tripped_monitor():
    """A monitor on a hand-stepped clock whose light tripped (contact lost) at t0 while emitting."""
    clock = [100.0]
    bus = SessionBus()
    light = FakeDevice("light")
    light.stop_now = lambda why: (light.stops.append((clock[0], why)), clock[0])[1]
    mon = SafetyMonitor(bus, {"light": light}, clock=lambda: clock[0])
    col = Collector()
    bus.subscribe(mon)
    bus.subscribe(col)
    mon.set_limits(LIGHT_STEP)
    bus.publish_block("light", light_block(contact=0, t=clock[0]))
    assert mon.is_tripped("light") and len(light.stops) == 1
    return bus, mon, light, col, clock


def _alarms(col):
    return [e for e in col.events if e.kind == "alarm" and e.details.get("device") == "light"]


def test_late_read_samples_after_a_hold_up_are_no_proof_the_device_ignored_the_stop():
    bus, mon, light, col, clock = _tripped_monitor()
    t0 = clock[0]
    mon.watch(t0 + 0.01)
    # Held up 500 ms: the samples queued meanwhile (still showing the shutter open) arrive stamped with their late
    # arrival, before the watchdog has looked again, then just after it.
    bus.publish_block("light", light_block(contact=0, t=t0 + 0.51))
    mon.watch(t0 + 0.512)
    bus.publish_block("light", light_block(contact=0, t=t0 + 0.515))
    assert len(light.stops) == 1 and not _alarms(col)
    bus.publish_block("light", light_block(shutter=0, contact=0, t=t0 + 0.53))  # then it shows itself stopped
    for k in range(1, 50):
        mon.watch(t0 + 0.53 + 0.01 * k)
    bus.publish_block("light", light_block(shutter=0, contact=0, t=t0 + 1.1))
    assert len(light.stops) == 1 and not _alarms(col)


def test_a_device_truly_still_active_after_a_hold_up_gets_the_second_stop_once_the_monitor_looks():
    bus, mon, light, col, clock = _tripped_monitor()
    t0 = clock[0]
    mon.watch(t0 + 0.01)
    t = t0 + 0.51  # held up 500 ms
    mon.watch(t)
    while len(light.stops) == 1:
        t += 0.01
        clock[0] = t
        mon.watch(t)
        bus.publish_block("light", light_block(contact=0, t=t))  # the shutter still open, looked at on time
        assert t < t0 + 0.8
    # 10 ms looked before the hold-up and 100 ms after it
    assert t - (t0 + 0.51) == pytest.approx(RESEND_STOP_AFTER_S - 0.01, abs=0.011)
    [alarm] = _alarms(col)
    assert "still active" in alarm.message and alarm.severity == "high"
    assert alarm.details["seen_after_stop_s"] >= RESEND_STOP_AFTER_S and alarm.details["after_stop_s"] > 0.5
    assert mon.tripped["light"].t_stop_written_s == pytest.approx(t)  # the second STOP counts from now on


def test_a_device_still_active_while_the_monitor_never_looks_on_time_is_stopped_again_at_the_wall_limit():
    bus, mon, light, col, clock = _tripped_monitor()
    t0 = t = clock[0]
    while len(light.stops) == 1:
        t += 0.15  # every look late: nothing seen, only the wall clock runs
        clock[0] = t
        mon.watch(t)
        bus.publish_block("light", light_block(contact=0, t=t))
        assert t < t0 + RESEND_STOP_WALL_S + 0.2
    assert t - t0 >= RESEND_STOP_WALL_S
    [alarm] = _alarms(col)
    assert "could not look" in alarm.message and "stop sent again" in alarm.message


def test_a_device_that_stopped_in_time_raises_no_alarm_and_the_latch_reset_forgets_the_stop():
    bus, mon, light, col, clock = _tripped_monitor()
    t0 = clock[0]
    bus.publish_block("light", light_block(shutter=0, contact=0, t=t0 + 0.02))
    for k in range(3, 40):
        mon.watch(t0 + 0.01 * k)
    bus.publish_block("light", light_block(shutter=0, contact=0, t=t0 + 0.4))
    assert len(light.stops) == 1 and not _alarms(col)
    mon.reset("dr-a")
    assert not mon._since_stop


# --- the whole rig: an E-stop, then the whole process held up -----------------------------------------------------
class _Events(BaseSink):
    """The events, and in the order the bus delivered them (`heard`), every "stop sent again" alarm and the host time
    (`t_host_s`, the stamp the monitor judges by) of every light block that showed the light inactive on its active
    channel. Frames of one read share one stamp, so order is told by delivery, never by comparing stamps."""

    def __init__(self, channel: str) -> None:
        self.events, self.channel, self.heard = [], channel, []

    def on_event(self, event) -> None:
        self.events.append(event)
        if event.kind == "alarm" and "stop sent again" in event.message:
            self.heard.append(("alarm", event))

    def on_block(self, device: str, block) -> None:
        if device == "light" and len(block) and not block[self.channel][-1]:
            self.heard.append(("inactive", float(block["t_host_s"][-1])))

    def inactive_after(self, t: float) -> int | None:
        """The index in `heard` of the first block showing the light inactive stamped at or after t, or None."""
        return next((i for i, (what, x) in enumerate(self.heard) if what == "inactive" and x >= t), None)


@pytest.mark.parametrize("hold_s", [0.45, 0.6])
def test_held_up_right_after_an_estop_no_false_still_active_alarm(tmp_path, hold_s):
    """Held up right after the E-stop's STOP was written: the devices stop in time, no "still active" alarm, none in
    the recording either (before: the samples queued during the hold-up raised it 2 times in 3)."""
    v = Visit.training(load_scenario(SCENARIO), tmp_path / "rec", store_path=tmp_path / "t.sqlite3")
    v.begin()
    try:
        seen = _Events(active_channel(v.rig.monitor.devices["light"]))
        v.rig.bus.subscribe(seen)
        emu = v.rig.emulators["light"]

        def estop_then_hold() -> None:
            wait_for(lambda: emu.state().active, 10, "the exposure")
            threading.Event().wait(0.1)
            v.rig.monitor.estop("trainer")
            hold_the_process(hold_s)

        th = threading.Thread(target=estop_then_hold, daemon=True)
        th.start()
        result = v.run_step()
        th.join(10)
        wait_for(lambda: not emu.state().active, 2, "the light stopped")
        trip = next(e for e in seen.events if e.kind == "interlock")
        stop_at = trip.details.get("stop_written_t_host_s", trip.t_host_s)
        wait_for(lambda: seen.inactive_after(stop_at) is not None, 10, "the host heard the light stop")
        assert result.outcome == "interrupted"
        assert {t.interlock for t in v.rig.monitor.trips} == {InterlockCause.ESTOP}
        # A false alarm (the finding) is raised by samples queued during the hold-up although the device stopped as
        # soon as it could run and the host heard so at once. On a loaded machine the emulator, which runs in this
        # process, can take longer than RESEND_STOP_AFTER_S after the hold-up to act on the STOP (a seventh-session
        # run: 106 ms), or act at once while its telemetry reaches the host late (an eighth-session run: closed after
        # 17.8 ms, alarm at 113 ms): either way the host had looked that long without hearing the light stop, and the
        # alarm and second STOP are the ones the rule exists for. Told apart by when the host first heard a block
        # showing the light inactive, never by loosening the bound. Measured from stop_at + hold_s: the monitor's
        # looking time since the STOP includes any moment between the STOP and the hold-up, as this does.
        first = seen.inactive_after(stop_at)
        heard_late_s = seen.heard[first][1] - stop_at - hold_s  # how long after the hold-up the host heard it stop
        closed_late_s = emu.state().shutter_closed_at - stop_at - hold_s
        alarms = [x for what, x in seen.heard if what == "alarm"]
        assert all(what == "inactive" for what, _ in seen.heard[first:]), "an alarm after the host heard it stop"
        assert not alarms or heard_late_s >= RESEND_STOP_AFTER_S / 2, (
            [a.message for a in alarms], heard_late_s, closed_late_s)
        saved = v.end()
        rec = Recording.open(saved.recording)
        recorded = [e for e in rec.events if e.kind == "alarm" and "stop sent again" in e.message]
        assert [e.message for e in recorded] == [a.message for a in alarms]
        assert [e for e in rec.events if e.kind == "stall"]
    finally:
        v.close()
