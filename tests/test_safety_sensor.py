"""Rules of the two interlocks issue 10 added, on synthetic blocks and events (tests/test_hostile_device.py and
tests/test_backup_time.py trip them through the real drivers and emulators)."""

import numpy as np
import pytest

from drivers.codes import InterlockCause
from tests.test_safety import Collector, FakeDevice, light_block
from workstation.bus import CommandRecord, Event, SessionBus, now_s
from workstation.session.safety import BACKUP_TIME_TOLERANCE_S, SafetyMonitor, StepLimits


@pytest.fixture
def mon():
    bus = SessionBus()
    monitor = SafetyMonitor(bus, {"light": FakeDevice("light")})
    bus.subscribe(monitor, first=True)
    col = Collector()
    bus.subscribe(col)
    monitor.set_limits(StepLimits(area_id="A1", light_allowed=True, target_dose_mj_cm2=1000.0))
    return bus, monitor, col


def implausible(active):
    return Event(now_s(), "implausible", "high" if active else "medium", "light",
                 "light: 1 implausible sample(s) rejected: lamp_temp_c = -327.68 °C (outside -20–150)",
                 {"channel": "lamp_temp_c", "value": -327.68, "active": active})


def test_an_implausible_sample_while_active_trips_sensor_implausible(mon):
    bus, monitor, col = mon
    bus.publish_event(implausible(True))
    (trip,) = monitor.trips
    assert trip.interlock == InterlockCause.SENSOR_IMPLAUSIBLE and trip.details["channel"] == "lamp_temp_c"
    assert monitor.devices["light"].stops


def test_an_implausible_sample_while_idle_is_recorded_not_tripped(mon):
    bus, monitor, col = mon
    bus.publish_block("light", light_block(shutter=0))
    bus.publish_event(implausible(False))
    assert not monitor.trips


def test_the_monitor_s_own_view_of_activity_counts_too(mon):
    """The driver said idle, but the last block the monitor saw was emitting: still a trip."""
    bus, monitor, col = mon
    bus.publish_block("light", light_block(shutter=1))
    bus.publish_event(implausible(False))
    assert monitor.trips[0].interlock == InterlockCause.SENSOR_IMPLAUSIBLE


def test_an_empty_block_is_ignored_and_proves_no_life(mon):
    bus, monitor, col = mon
    bus.publish_block("light", light_block(shutter=1))
    before = bus.sink_errors
    bus.publish_block("light", light_block(n=0))
    assert bus.sink_errors == before and not monitor.trips
    t0 = now_s()
    for k in range(31):  # the watchdog looks every 10 ms for 300 ms and sees no sample
        monitor.watch(t0 + 0.01 * k)
    assert monitor.trips[0].interlock == InterlockCause.TELEMETRY_LOST


def _exposure(bus, open_s, start_us=1_000_000, frames_of=20, period_us=500):
    """Blocks of an exposure open for open_s on the device clock."""
    n_total = int(open_s * 1e6 / period_us) + 1
    t = start_us + np.arange(n_total, dtype=np.int64) * period_us
    for i in range(0, n_total, frames_of):
        b = light_block(n=len(t[i:i + frames_of]), shutter=1, dose=1.0)
        b["t_device_us"] = t[i:i + frames_of]
        bus.publish_block("light", b)


def _acked_backup(bus, seconds):
    bus.publish_command(CommandRecord(now_s(), "light", "set", {"param": "backup_time_s", "value": seconds}, "ack"))


def test_an_exposure_past_its_backup_time_trips_backup_time(mon):
    bus, monitor, col = mon
    _acked_backup(bus, 0.5)
    _exposure(bus, 0.5 + BACKUP_TIME_TOLERANCE_S + 0.002)
    (trip,) = monitor.trips
    assert trip.interlock == InterlockCause.BACKUP_TIME and trip.details["backup_time_s"] == 0.5


def test_an_exposure_within_its_backup_time_does_not_trip(mon):
    bus, monitor, col = mon
    _acked_backup(bus, 0.5)
    _exposure(bus, 0.5 + BACKUP_TIME_TOLERANCE_S - 0.002)
    assert not monitor.trips


def test_each_exposure_counts_from_its_own_start(mon):
    bus, monitor, col = mon
    _acked_backup(bus, 0.3)
    _exposure(bus, 0.25, start_us=1_000_000)
    closed = light_block(n=20, shutter=0)
    closed["t_device_us"] = 1_300_000 + np.arange(20) * 500
    bus.publish_block("light", closed)
    _exposure(bus, 0.25, start_us=1_400_000)
    assert not monitor.trips


def test_a_refused_backup_time_is_not_taken(mon):
    bus, monitor, col = mon
    bus.publish_command(CommandRecord(now_s(), "light", "set", {"param": "backup_time_s", "value": 0.1},
                                      "refused: out of bounds (code 1)"))
    _exposure(bus, 0.4)
    assert not monitor.trips


def test_a_device_backup_time_fault_is_tripped_as_backup_time(mon):
    bus, monitor, col = mon
    bus.publish_event(Event(now_s(), "fault", "high", "light", "light fault: BACKUP_TIME: sensor low?",
                            {"fault_bits": 16, "new_bits": 16, "faults": ["BACKUP_TIME"]}))
    assert monitor.trips[0].interlock == InterlockCause.BACKUP_TIME
    assert monitor.trips[0].details["detected_by"] == "device"
