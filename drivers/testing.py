"""The driver kit's contract tests: what every driver must do for the safety monitor, importable by any package.

A manufacturer's package subclasses the contract of its device's kind (`LightSourceContract`, `NeedlingPenContract`;
both include every `DeviceContract` test) in its own tests, names its driver and its emulator, and pytest runs every
contract test against them over a real pseudo-terminal (python-microscope's test-mixin idea):

    from drivers.testing import LightSourceContract

    class TestMyLight(LightSourceContract):
        driver_class = MyLight                        # a drivers.base.SerialDevice + drivers.interfaces.LightSource
        settings = (("target_dose_mj_cm2", 50.0),)    # values the device accepts
        out_of_bounds = ("target_dose_mj_cm2", 9e9)   # a value the driver must refuse before sending

        def make_emulator(self, **kw):                # a drivers.emulators.base.Emulator, not yet started
            return MyLightEmulator(**kw)

        def activate(self, drv):                      # make the device emit / needle (armed, started)
            drv.set_target_dose(4000); drv.arm(); drv.start()

The contract (docs/writing-a-driver.md says why each one matters): the driver declares its channels with units and
plausible ranges; connecting checks the device's identity and refuses another device; connecting makes the device
safe first (STOP, then ARM 0) even if a crashed host left it active; heartbeats flow while the host is alive and the
device's own watchdog stops it within 250 ms when they stop; values outside the declared bounds are refused before a
byte is sent; accepted commands are acknowledged and published; faults arrive as "fault" events with the fault names;
an unplugged cable is reported within 250 ms as a `connection` event with its codes (drivers/codes.py) and a reconnect
makes the device safe again; stalled telemetry is reported; telemetry arrives at the nominal rate without gaps; the
driver implements the interface of its kind, whose typed setters check the bounds, and its `active_channel` is 1 in
the telemetry while the device is active and 0 once it stopped. Needs pytest (a test dependency of the package that
uses it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest

from drivers import protocol as p
from drivers.base import NotConnected, SerialDevice
from drivers.codes import DisconnectReason, LinkEvent
from drivers.errors import CommandRefused, StartInhibited, WrongDevice
from drivers.events import CommandRecord, Event, FanOut
from drivers.interfaces import KIND_INTERFACES, LightSource, NeedlingPen, interface_problem
from drivers.link import TELEMETRY_LOST_S
from drivers.types import KINDS, BoundsError

WATCHDOG_ATTEMPTS = 3  # tries of "heartbeats keep it running" while the device's watchdog stops it (a loaded machine)

__all__ = ["DeviceContract", "LightSourceContract", "NeedlingPenContract", "Tap", "link_events", "wait_for"]

# Units of channels that carry bookkeeping (clocks, counters, flags), not a measurement: they need no plausible range.
BOOKKEEPING_UNITS = frozenset({"s", "µs", "count", "bool", "bits"})


@dataclass
class Tap:
    """A sink that keeps everything a publisher delivers, for assertions."""

    blocks: dict[str, list[np.ndarray]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    commands: list[CommandRecord] = field(default_factory=list)

    def on_block(self, device: str, block: np.ndarray) -> None:
        self.blocks.setdefault(device, []).append(block)

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def on_command(self, record: CommandRecord) -> None:
        self.commands.append(record)

    def kinds(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]


def link_events(tap: Tap, link: LinkEvent, device: str | None = None) -> list[Event]:
    """The `connection` events with `details["link"] == link` (of `device`, if given), in order."""
    return [e for e in tap.kinds("connection")
            if e.details.get("link") == link and (device is None or e.source == device)]


def wait_for(pred: Callable[[], object], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll `pred` every 5 ms until it is true; AssertionError naming `what` after `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.005)


class DeviceContract:
    """Mixin of contract tests; subclass it as `Test<Something>` and fill in the four names below."""

    driver_class: ClassVar[type[SerialDevice]]  # implementing the interface of its kind (drivers.interfaces)
    settings: ClassVar[tuple[tuple[str, float], ...]] = ()  # (param, value) pairs the device accepts
    out_of_bounds: ClassVar[tuple[str, float]]  # (param, value) the driver must refuse before sending

    def make_emulator(self, **kw: Any) -> Any:
        """A new, not yet started emulator of the device (a drivers.emulators.base.Emulator subclass)."""
        raise NotImplementedError("a DeviceContract subclass names its emulator")

    def activate(self, drv: SerialDevice) -> None:
        """Make the connected device active (emitting / needling): set what it needs, arm, start."""
        raise NotImplementedError("a DeviceContract subclass says how its device is started")

    def make_other_emulator(self) -> Any:
        """An emulator of a device this driver must refuse (default: a built-in device of the other kind)."""
        from drivers.emulators import LightEmulator, PenEmulator

        return PenEmulator() if self.driver_class.INFO.kind == "light" else LightEmulator()

    # --- fixtures -----------------------------------------------------------------------------------------------
    @pytest.fixture
    def publisher(self) -> tuple[FanOut, Tap]:
        bus, tap = FanOut(), Tap()
        bus.subscribe(tap)
        return bus, tap

    @pytest.fixture
    def emulator(self) -> Iterator[Any]:
        emu = self.make_emulator().start()
        yield emu
        emu.stop()

    @pytest.fixture
    def device(self, emulator: Any, publisher: tuple[FanOut, Tap]) -> Iterator[tuple[Any, SerialDevice, Tap]]:
        """(emulator, connected driver, tap)."""
        bus, tap = publisher
        drv = self.driver_class(emulator.port, bus=bus)
        drv.connect()
        yield emulator, drv, tap
        drv.close()

    # --- declarations -------------------------------------------------------------------------------------------
    def test_declares_kind_channels_units_ranges_and_bounds(self) -> None:
        cls = self.driver_class
        info = cls.INFO
        assert info.kind in KINDS and info.name and info.version and info.nominal_rate_hz > 0
        assert info.model_prefixes, "declare the models this driver drives (DriverInfo.model_prefixes)"
        assert p.PROTOCOL_VERSION in info.protocol_versions
        fields = set(cls.BLOCK_DTYPE.names)
        assert [c.name for c in info.channels] == list(cls.BLOCK_DTYPE.names), "one channel per block field"
        for c in info.channels:
            assert c.unit and c.description, f"{c.name}: declare its unit and say what it is"
            if c.unit not in BOOKKEEPING_UNITS:
                assert c.minimum > -np.inf and c.maximum < np.inf, f"{c.name}: declare its plausible range"
        assert {"t_host_s", "t_device_us", "seq", "fault_bits", cls.active_channel} <= fields
        assert next(c for c in info.channels if c.name == cls.active_channel).unit == "bool"
        assert issubclass(cls, KIND_INTERFACES[info.kind]), f"subclass the {info.kind} interface (drivers.interfaces)"
        assert interface_problem(cls) == ""
        bounds = {b.name for b in info.bounds}
        assert set(cls.PARAMS) <= bounds, "every settable parameter has a host-side bound"
        assert cls.FAULTS["WATCHDOG"] == 1, "fault bit 0 is the device watchdog"

    # --- connect ------------------------------------------------------------------------------------------------
    def test_identity_is_checked_on_connect(self, device: tuple) -> None:
        emu, drv, tap = device
        ident = drv.identity
        assert drv.INFO.identity_problem(ident) == ""
        assert ident.protocol_version == p.PROTOCOL_VERSION and ident.model.startswith(drv.INFO.model_prefixes)
        assert ident.serial_number and ident.firmware and ident.extra["kind"] == drv.INFO.kind
        assert drv.identify() == ident  # asking again gives the same answer

    def test_another_device_is_refused_and_left_alone(self, publisher: tuple) -> None:
        bus, tap = publisher
        other = self.make_other_emulator().start()
        try:
            drv = self.driver_class(other.port, bus=bus, auto_reconnect=False)
            with pytest.raises(WrongDevice, match="not a"):
                drv.connect()
            assert not drv.connected
            assert not [c for c in tap.commands if c.command in ("set", "start")]
            drv.close()
        finally:
            other.stop()

    def test_connect_makes_safe_first_stop_then_disarm(self, device: tuple) -> None:
        emu, drv, tap = device
        st = emu.state()
        assert not st.active and not st.armed
        assert [c.command for c in tap.commands[:2]] == ["stop", "arm"] and tap.commands[1].args["on"] is False

    def test_connect_stops_a_device_a_crashed_host_left_active(self, emulator: Any, publisher: tuple) -> None:
        bus, tap = publisher
        first = self.driver_class(emulator.port, bus=bus)
        first.connect()
        self.activate(first)
        wait_for(lambda: emulator.state().active, what="device active")
        first.link.abandon()  # the host "crashes": threads stop, port dropped, no stop sent
        second = self.driver_class(emulator.port, bus=bus)
        t0 = time.monotonic()
        second.connect()
        try:
            wait_for(lambda: not emulator.state().active, timeout_s=10.0, what="device stopped by the connect")
            st = emulator.state()
            assert st.last_command_at["STOP"] >= t0  # the connect's first frame (judged on the device's record)
            # by that STOP, unless the machine was so slow that it reached the device after the 250 ms watchdog had
            # already run out (the device's own record of the last heartbeat says which; the watchdog was right then)
            heard = max(st.last_heartbeat_at or 0.0, st.last_command_at.get("ARM", 0.0))
            if st.last_command_at["STOP"] - heard <= 0.25:
                assert not st.faults & self.driver_class.FAULTS["WATCHDOG"]
        finally:
            second.close()

    # --- heartbeat and watchdog ---------------------------------------------------------------------------------
    def test_heartbeats_flow_while_the_host_is_alive(self, device: tuple) -> None:
        emu, drv, tap = device
        sent, received = drv.counters.heartbeats_sent, emu.state().heartbeats_received
        # they flow (counted, not timed: their period is a timing figure, bench/telemetry.py runs the same link)
        wait_for(lambda: drv.counters.heartbeats_sent - sent >= 5 and emu.state().heartbeats_received - received >= 5,
                 timeout_s=10.0, what="5 heartbeats sent and received")
        # Longer than the device watchdog, heartbeats keep it running. The emulator runs in this process: on a machine
        # so loaded that a thread of it or of the driver is not scheduled for 250 ms, the device's own watchdog stops
        # it, which is that watchdog doing its job. So a watchdog stop is tried again, up to WATCHDOG_ATTEMPTS times:
        # heartbeats that do not keep the device running stop it every time; any other stop or fault fails at once.
        sends: list[float] = []
        beat = drv.heartbeat
        drv.heartbeat = lambda: (sends.append(time.monotonic()), beat())[1]  # when each was handed to the link
        stops: list[str] = []
        for attempt in range(WATCHDOG_ATTEMPTS):
            if attempt:
                try:
                    drv.reset_faults()
                except CommandRefused as exc:  # the device still hears no heartbeat
                    pytest.fail(f"heartbeats did not keep the device running: {'; '.join(stops)}; then {exc}")
            self.activate(drv)
            wait_for(lambda: emu.state().active, what="device active")
            t_on = time.monotonic()
            time.sleep(3 * TELEMETRY_LOST_S)
            st = emu.state()
            if st.active and not st.faults:
                break
            assert st.faults == drv.FAULTS["WATCHDOG"], f"the device stopped with faults {st.faults:#x}"
            beats = [t_on, *(t for t in sends if t > t_on), time.monotonic()]
            stops.append(f"stopped by its watchdog, longest time between the host's heartbeats "
                         f"{max(np.diff(beats)) * 1000:.0f} ms")
        else:
            pytest.fail(f"heartbeats did not keep the device running in {WATCHDOG_ATTEMPTS} tries: {'; '.join(stops)}")
        drv.stop_now("contract test")
        wait_for(lambda: not emu.state().active, what="device stopped")

    def test_device_watchdog_stops_it_when_heartbeats_stop(self, device: tuple) -> None:
        emu, drv, tap = device
        alive = [True]
        drv.liveness = lambda: alive[0]
        self.activate(drv)
        wait_for(lambda: emu.state().active, what="device active")
        alive[0] = False  # the host's safety monitor "hangs": heartbeats stop
        t_silent = time.monotonic()
        wait_for(lambda: not emu.state().active, timeout_s=10.0, what="device stopped by its watchdog")
        st = emu.state()
        assert st.faults & drv.FAULTS["WATCHDOG"] and st.last_stop_at > t_silent
        # 250 ms after the last heartbeat it received (or the ARM that started its watch), on the device's own
        # schedule, then the blade or the brake
        heard = max(st.last_heartbeat_at or 0.0, st.last_command_at.get("ARM", 0.0))
        assert 0.25 < st.last_stop_at - heard < 0.25 + 0.1

    def test_faults_are_reported_as_fault_events_by_name(self, device: tuple) -> None:
        emu, drv, tap = device
        alive = [True]
        drv.liveness = lambda: alive[0]
        self.activate(drv)
        wait_for(lambda: emu.state().active, what="device active")
        alive[0] = False
        wait_for(lambda: tap.kinds("fault"), timeout_s=10.0, what="fault event")  # reported; how soon is a bench figure
        ev = tap.kinds("fault")[0]
        assert ev.severity == "high" and ev.source == drv.name and "WATCHDOG" in ev.message
        assert ev.details["faults"] == ["WATCHDOG"] and ev.details["new_bits"] & drv.FAULTS["WATCHDOG"]

    # --- commands -----------------------------------------------------------------------------------------------
    def test_commands_are_acknowledged_and_published(self, device: tuple) -> None:
        emu, drv, tap = device
        for name, value in self.settings:
            assert drv._set(name, value) == value
        drv.arm()
        drv.arm(False)
        mine = [c for c in tap.commands[2:] if c.command in ("set", "arm") and c.args.get("why") is None]
        assert mine and all(c.result == "ack" for c in mine)
        assert {c.args.get("param") for c in mine if c.command == "set"} >= {n for n, _ in self.settings}
        assert all(c.t_reply_s >= c.t_host_s for c in mine)

    def test_out_of_bounds_values_are_refused_before_sending(self, device: tuple) -> None:
        emu, drv, tap = device
        before = emu.state()
        name, value = self.out_of_bounds
        with pytest.raises(BoundsError, match="outside the device's range"):
            drv._set(name, value)
        time.sleep(0.1)
        after = emu.state()
        heartbeats = after.heartbeats_received - before.heartbeats_received
        assert after.commands_received - before.commands_received <= heartbeats  # only heartbeats reached it
        assert not [c for c in tap.commands if c.command == "set"]

    def test_a_shut_start_gate_refuses_start_and_arm_unwritten_until_allowed(self, device: tuple) -> None:
        emu, drv, tap = device
        drv.inhibit_starts("interlock", "the estop interlock is latched")
        drv.inhibit_starts("session", "the session was paused")
        before = emu.state()
        for command in (drv.arm, drv.start):
            with pytest.raises(StartInhibited, match="was not sent: the estop interlock is latched"):
                command()
        drv.allow_starts("interlock")  # one owner's: the other still holds it shut
        with pytest.raises(StartInhibited, match="was not sent: the session was paused"):
            drv.start()
        time.sleep(0.1)
        after = emu.state()
        assert after.last_command_at.get("ARM") == before.last_command_at.get("ARM")  # nothing reached the device
        assert after.last_command_at.get("START") == before.last_command_at.get("START")
        refused = [c.result for c in tap.commands if c.command in ("arm", "start") and c.args.get("why") is None]
        assert refused == ["not sent: the estop interlock is latched"] * 2 + ["not sent: the session was paused"]
        drv.arm(False)  # disarming can only make it safer: never gated
        drv.stop_now("the contract")
        drv.allow_starts("session")
        self.activate(drv)  # open again: written and acknowledged
        wait_for(lambda: emu.state().active, what="device active once the gate is open")

    # --- link ---------------------------------------------------------------------------------------------------
    def test_telemetry_at_the_nominal_rate_without_gaps(self, device: tuple) -> None:
        emu, drv, tap = device
        # the rate on the host's clock is a timing figure (bench/telemetry.py); here: every sample the device
        # clocked arrived, on its own clock, at its nominal rate, but for whole frames the device dropped while the
        # host was not reading (a machine too loaded to run the reader: the emulator counts those apart), which the
        # driver must count as lost (a loaded run of the eighteenth session: 290 frames, the test failed on them)
        s0 = drv.counters.samples
        wait_for(lambda: drv.counters.samples - s0 >= drv.INFO.nominal_rate_hz, timeout_s=10.0,
                 what="a second of samples")
        emu.stall(True)  # no more frames: what the driver counted and what it published hold still
        seen: list[tuple[int, int]] = []

        def settled() -> bool:
            seen.append((drv.counters.frames, sum(len(b) for b in tap.blocks[drv.name])))
            return len(seen) > 10 and seen[-1] == seen[-11]
        wait_for(settled, timeout_s=10.0, what="the last frames read")
        assert drv.counters.bad_frames == 0
        period = round(1e6 / drv.INFO.nominal_rate_hz)
        steps = np.diff(np.concatenate([b["t_device_us"] for b in tap.blocks[drv.name]]))
        assert (steps > 0).all() and (steps % period == 0).all()  # whole samples, evenly spaced, never back
        if (steps > period).any():  # whole frames missing: dropped by the device as the host did not read
            line = emu.state().link
            assert line.frames_dropped_unread > 0 and drv.counters.lost_frames > 0, (line, drv.counters)
        else:
            assert drv.counters.seq_gaps == 0

    def test_unplug_is_reported_within_250_ms_and_reconnect_makes_safe(self, device: tuple) -> None:
        emu, drv, tap = device
        emu.unplug()
        t_unplug = emu.state().injected_at["unplug"]

        wait_for(lambda: link_events(tap, LinkEvent.DISCONNECTED), timeout_s=10.0, what="disconnect reported")
        ev = link_events(tap, LinkEvent.DISCONNECTED)[0]
        # seen by a failed read or write itself (not by 250 ms of silence), after the unplug: causal, whatever the load;
        # the code says which, the message says it in words
        assert not drv.connected and ev.severity == "high" and ev.t_host_s >= t_unplug
        assert ev.details["disconnect"] in (DisconnectReason.READ_FAILED, DisconnectReason.WRITE_FAILED)
        assert ev.source == drv.name and "disconnected" in ev.message
        with pytest.raises(NotConnected):
            drv.arm()
        emu.replug()
        wait_for(lambda: drv.connected and drv.counters.reconnects == 1, timeout_s=10.0, what="reconnected")
        # published by the reader thread just after it marks the link up: waited for, not raced
        wait_for(lambda: link_events(tap, LinkEvent.RECONNECTED, drv.name), timeout_s=10.0, what="reconnected event")
        assert not emu.state().active and not emu.state().armed
        drv.arm()  # commands work again

    def test_stalled_telemetry_is_reported(self, device: tuple) -> None:
        emu, drv, tap = device
        emu.stall(True)
        # reported; how soon (TELEMETRY_LOST_S) is a bench figure: a loaded machine must not fail a manufacturer's suite
        wait_for(lambda: drv.telemetry_lost, timeout_s=10.0, what="telemetry lost")
        assert drv.connected  # a stall is not a disconnect
        lost = link_events(tap, LinkEvent.TELEMETRY_LOST, drv.name)
        assert lost and lost[0].severity == "high" and not link_events(tap, LinkEvent.DISCONNECTED)
        emu.stall(False)
        wait_for(lambda: not drv.telemetry_lost, what="telemetry resumed")
        wait_for(lambda: link_events(tap, LinkEvent.TELEMETRY_RESUMED, drv.name), what="telemetry resumed event")

    # --- every connection event says what happened in a code --------------------------------------------------
    def test_connection_events_carry_link_codes(self, device: tuple) -> None:
        emu, drv, tap = device
        connected = link_events(tap, LinkEvent.CONNECTED, drv.name)
        assert len(connected) == 1 and connected[0].severity == "info"
        emu.unplug()
        wait_for(lambda: link_events(tap, LinkEvent.DISCONNECTED), timeout_s=10.0, what="disconnect reported")
        emu.replug()
        wait_for(lambda: link_events(tap, LinkEvent.RECONNECTED), what="reconnected")
        codes = {str(v) for v in LinkEvent}
        for e in tap.kinds("connection"):
            assert e.details.get("link") in codes, f"a connection event without its code: {e.message!r}"
            if e.details["link"] == LinkEvent.DISCONNECTED:
                assert e.details.get("disconnect") in {str(v) for v in DisconnectReason}


class _KindContract(DeviceContract):
    """What the per-kind contracts share: the active channel declared and live."""

    def test_active_channel_is_declared_and_live(self, device: tuple) -> None:
        emu, drv, tap = device
        channel = drv.active_channel
        assert channel in drv.BLOCK_DTYPE.names and any(c.name == channel for c in drv.channels)

        def last_active() -> int | None:
            blocks = tap.blocks.get(drv.name)
            return int(blocks[-1][channel][-1]) if blocks else None

        wait_for(lambda: last_active() == 0, what=f"{channel} = 0 while idle")
        self.activate(drv)
        wait_for(lambda: last_active() == 1, what=f"{channel} = 1 while active")
        drv.stop()
        wait_for(lambda: last_active() == 0, what=f"{channel} = 0 after stop")

    def _refused_before_sending(self, drv: SerialDevice, emu: Any, tap: Tap, call: Callable[[], object]) -> None:
        before = emu.state()
        with pytest.raises(BoundsError):
            call()
        time.sleep(0.05)
        after = emu.state()
        assert after.commands_received - before.commands_received <= after.heartbeats_received - \
            before.heartbeats_received
        assert not [c for c in tap.commands if c.command == "set"]


class LightSourceContract(_KindContract):
    """The contract of a `LightSource` driver: `DeviceContract` and its typed setter (`set_target_dose`)."""

    target_dose_mj_cm2: ClassVar[float] = 50.0  # a target the device accepts

    def test_is_a_light_source(self) -> None:
        assert self.driver_class.INFO.kind == "light" and issubclass(self.driver_class, LightSource)

    def test_set_target_dose_sends_its_backup_time_first(self, device: tuple) -> None:
        emu, drv, tap = device
        assert drv.set_target_dose(self.target_dose_mj_cm2) == self.target_dose_mj_cm2
        sets = [c for c in tap.commands if c.command == "set"]
        assert [c.args["param"] for c in sets] == ["backup_time_s", "target_dose_mj_cm2"]
        assert all(c.result == "ack" for c in sets)
        assert drv.backup_time_s is not None and drv.backup_time_s == sets[0].args["value"] > 0
        assert sets[1].args["value"] == self.target_dose_mj_cm2

    def test_set_target_dose_refuses_out_of_bounds_before_sending(self, device: tuple) -> None:
        emu, drv, tap = device
        bound = next(b for b in drv.INFO.bounds if b.name == "target_dose_mj_cm2")
        for value in (bound.maximum * 1.01 + 1, bound.minimum - 1, float("nan"), "fifty"):
            self._refused_before_sending(drv, emu, tap, lambda v=value: drv.set_target_dose(v))


class NeedlingPenContract(_KindContract):
    """The contract of a `NeedlingPen` driver: `DeviceContract` and its typed setters (`set_depth`,
    `set_stroke_rate`)."""

    depth_mm: ClassVar[float] = 1.0  # values the device accepts
    stroke_rate_hz: ClassVar[float] = 100.0

    def test_is_a_needling_pen(self) -> None:
        assert self.driver_class.INFO.kind == "needling" and issubclass(self.driver_class, NeedlingPen)

    def test_typed_setters_are_acknowledged(self, device: tuple) -> None:
        emu, drv, tap = device
        assert drv.set_depth(self.depth_mm) == self.depth_mm
        assert drv.set_stroke_rate(self.stroke_rate_hz) == self.stroke_rate_hz
        sets = [(c.args["param"], c.args["value"], c.result) for c in tap.commands if c.command == "set"]
        assert sets == [("depth_mm", self.depth_mm, "ack"), ("stroke_rate_hz", self.stroke_rate_hz, "ack")]

    def test_typed_setters_refuse_out_of_bounds_before_sending(self, device: tuple) -> None:
        emu, drv, tap = device
        bounds = {b.name: b for b in drv.INFO.bounds}
        for name, setter in (("depth_mm", drv.set_depth), ("stroke_rate_hz", drv.set_stroke_rate)):
            for value in (bounds[name].maximum * 1.01 + 1, bounds[name].minimum - 1, float("inf")):
                self._refused_before_sending(drv, emu, tap, lambda s=setter, v=value: s(v))
