"""The live rig: bus, safety monitor, drivers (on emulators or real ports), and the session recorder, wired once.

The headless runner and the window both build sessions from this, so the order that safety depends on lives in one
place: the monitor is subscribed first and started before any driver connects, and the drivers send heartbeats only
while it is alive.
"""

from __future__ import annotations

import gc
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from drivers.base import DeviceError, SerialDevice
from drivers.codes import AbortCause
from drivers.discovery import driver_for
from drivers.errors import WrongDevice
from drivers.silence import wait_seen
from drivers.types import kind_words
from workstation.bus import Event, SessionBus, now_s
from workstation.errors import UserError
from workstation.session import roles
from workstation.session.outcome import EXIT_CODES
from workstation.session.safety import RESEND_STOP_WALL_S, SafetyMonitor

log = logging.getLogger(__name__)

SOFTWARE_VERSION = "0.1.0"
# The rig's devices by name (its port fields, its recording's device groups) and the driver kind each one needs: the
# one place a name meets a role; everything downstream asks the drivers' kinds (workstation/session/roles.py).
DEVICE_KINDS = {"light": roles.LIGHT, "pen": roles.NEEDLING}


@dataclass
class Rig:
    bus: SessionBus
    monitor: SafetyMonitor
    devices: dict[str, SerialDevice]
    emulators: dict[str, Any] = field(default_factory=dict)  # simulation only: name -> Emulator
    recorder: Any = None  # SessionRecorder while recording
    mode: str = "simulation"
    _recorded: Any = None  # the last SessionRecorder started, closing or closed included (recording_state)
    _recording_closed: bool = False

    @property
    def recording_state(self) -> str:
        """Whether what is published now reaches the file: "before" it began, "open", or "closed" from the moment
        its close takes no more (SessionRecorder.takes_more: before the checksum and signature, which take time)."""
        rec = self._recorded
        if rec is None:
            return "before"
        return "open" if rec.takes_more and not self._recording_closed else "closed"

    # --- construction -----------------------------------------------------------------------------------------
    @classmethod
    def simulation(cls, *, seed: int = 1, light_warmup_s: float = 1.0, bus: SessionBus | None = None,
                   connect: bool = True) -> Rig:
        """Start both device emulators on ptys and connect the real drivers to them."""
        from drivers.emulators.lamp import LampParams
        from drivers.emulators.light import LightEmulator
        from drivers.emulators.pen import PenEmulator

        make = {roles.LIGHT: lambda: LightEmulator(seed=seed, lamp=LampParams(warmup_s=light_warmup_s)),
                roles.NEEDLING: lambda: PenEmulator(seed=seed + 1)}
        emulators = {name: make[kind]().start() for name, kind in DEVICE_KINDS.items()}
        ports = {name: emu.port for name, emu in emulators.items()}
        models = {name: emu.model for name, emu in emulators.items()}  # the emulators' drivers, whatever else is installed
        rig = cls._build(ports, bus or SessionBus(), "simulation", models)
        rig.emulators = emulators
        if connect:
            rig.connect()
        return rig

    @classmethod
    def clinical(cls, ports: dict[str, str], *, bus: SessionBus | None = None, connect: bool = True) -> Rig:
        """Real devices on the given serial ports ({"light": "/dev/ttyUSB0", "pen": ...})."""
        unknown = set(ports) - set(DEVICE_KINDS)
        if unknown:
            raise UserError(f"unknown device {', '.join(sorted(unknown))}: the devices are 'light' and 'pen'.")
        check_ports_distinct(ports)
        rig = cls._build(ports, bus or SessionBus(), "clinical")
        if connect:
            rig.connect()
        return rig

    @classmethod
    def _build(cls, ports: dict[str, str], bus: SessionBus, mode: str, models: dict[str, str] | None = None) -> Rig:
        monitor = SafetyMonitor(bus)
        bus.subscribe(monitor, first=True)
        devices: dict[str, SerialDevice] = {}
        for name, port in ports.items():
            try:
                driver_cls = driver_for(DEVICE_KINDS[name], model=(models or {}).get(name))
            except LookupError as exc:
                raise UserError(str(exc)) from exc
            dev = driver_cls(port, name=name, bus=bus, liveness=monitor.alive)
            devices[name] = dev
            monitor.add_device(name, dev)
        hold_garbage_collection_short()
        monitor.start()
        return cls(bus, monitor, devices, mode=mode)

    def connect(self) -> dict[str, dict]:
        """Connect every device; a device that cannot be reached is a UserError naming its port."""
        identities = {}
        wrong: list[str] = []
        for name, dev in self.devices.items():
            try:
                ident = dev.connect()
            except WrongDevice as exc:  # another kind answered: collect it, to name both ports at once
                if exc.identity is None or str(exc.identity.extra.get("kind", "")) == dev.INFO.kind:
                    self.close()  # the right kind, but a model or protocol the driver does not drive: its words
                    raise UserError(f"The {name} could not be connected: {exc}") from exc
                ident = exc.identity
            except DeviceError as exc:
                self.close()
                raise NotConnectedError(f"The {name} could not be connected: {exc}") from exc
            answered = str(ident.extra.get("kind", "") or "")
            if answered and answered != dev.INFO.kind:
                what = kind_words(answered)
                wrong.append(f"the port {dev.port} given for the {name} answered as {what} ({ident.model} s/n "
                             f"{ident.serial_number})")
            identities[name] = ident.as_dict()
        if wrong:
            self.close()
            swapped = " (the light and pen ports are swapped)" if len(wrong) == len(self.devices) == 2 else ""
            text = "; ".join(wrong)
            raise UserError(f"{text[:1].upper()}{text[1:]}{swapped}: put each device's port in its own field, "
                            "then connect again.")
        return identities

    def device_of_kind(self, kind: str) -> SerialDevice | None:
        """The rig's device whose driver is of `kind` (roles.LIGHT, roles.NEEDLING), or None."""
        name = roles.named_of_kind(self.devices, kind)
        return self.devices[name] if name is not None else None

    # --- recording --------------------------------------------------------------------------------------------
    def start_recording(self, directory: str | Path, *, patient_pseudonym: str, operator_id: str,
                        protocol_id: str, protocol_version: str, plan: dict | None = None,
                        on_error: Any = None, t0_host_s: float | None = None) -> Any:
        """Open the session's recording and subscribe it; every device must be connected (identity recorded).
        `t0_host_s`: session time 0 (monotonic clock), default now."""
        from workstation.recording import SessionMeta, SessionRecorder

        meta = SessionMeta(str(uuid.uuid4()), self.mode, patient_pseudonym, operator_id or "unknown",
                           protocol_id, protocol_version, SOFTWARE_VERSION)

        def failed(err: Exception) -> None:  # the writer thread: make safe now, then tell everyone
            self.monitor.estop("recording failed")
            # nothing more may be given that the file would not hold: no reset, arm, start or resume until the end
            self.monitor.hold("The recording failed, so nothing more can be recorded: this session cannot treat "
                              "again. End it; what was given up to the failure is saved.", "the recording failed",
                              AbortCause.RECORDING)
            self.bus.publish_event(Event(now_s(), "alarm", "high", "session",
                                         f"Recording failed, the devices were stopped: {err}", {}))
            if on_error is not None:
                on_error(err)

        rec = SessionRecorder.create(directory, meta, on_alarm=self.bus.publish_event, on_error=failed,
                                     t0_host_s=t0_host_s)
        for name, dev in self.devices.items():
            ident = dev.identity
            if ident is None:
                raise UserError(f"The {name} has not identified itself; connect it before recording.")
            rec.add_device(name, dev.INFO, ident, dev.BLOCK_DTYPE, dict(ident.extra.get("calibration") or {}))
        rec.start()
        self.bus.subscribe(rec)
        self._recorded, self._recording_closed = rec, False
        if plan is not None:
            rec.write_plan(plan)
        for device, trip in self.monitor.tripped.items():  # latched before the file began: its cause is said in it
            self.bus.publish_event(Event(now_s(), "alarm", "high", "safety", f"an interlock latched before this "
                                         f"recording began: {trip.interlock} on {device}: {trip.message}",
                                         {"interlock": str(trip.interlock), "device": device, "latched": True,
                                          "cause_t_host_s": trip.t_cause_s}))
        self.recorder = rec
        return rec

    def stop_recording(self) -> tuple[Path, str | None] | None:
        """Close the recording: (path, sha256), the sha256 None if a failed recording left no room for it."""
        rec, self.recorder = self.recorder, None
        if rec is None:
            return None
        # Subscribed until its close is done: an answer read during the close (the ACK of a STOP written without
        # waiting, at the session's end) still reaches the file (recording/late.py). Unsubscribed first, it was lost
        # with no trace: fresh tester of issue 12, a file whose /commands lacked the session's last two stops.
        try:
            return rec.path, rec.close()
        finally:
            self.bus.unsubscribe(rec)
            self._recording_closed = True

    # --- simulation faults --------------------------------------------------------------------------------------
    def inject(self, device: str, action: str, value: float = 0.0) -> None:
        """Inject a fault into an emulated device (simulation only)."""
        emu = self.emulators.get(device)
        if emu is None:
            raise UserError("faults can only be injected in simulation mode, into 'light' or 'pen'.")
        if action == "corrupt":
            emu.corrupt(value or 0.01)
        elif action == "stall":
            emu.stall(True)
        elif action == "unstall":
            emu.stall(False)
        elif action == "contact_restored":
            emu.set_contact(True)
        else:
            try:
                emu.inject(action)
            except ValueError as exc:
                raise UserError(f"The {device} emulator cannot simulate that: {exc}.") from exc
        self.bus.publish_event(Event(now_s(), "fault_injected", "info", "trainer",
                                     f"trainer injected {action} into the {device}", {"device": device,
                                                                                       "action": action}))

    # --- teardown ----------------------------------------------------------------------------------------------
    def close(self) -> tuple[Path, str] | None:
        """Stop the devices, close the recording, the drivers, the monitor and the emulators (in that order)."""
        for dev in self.devices.values():
            try:
                dev.close()
            except Exception:  # noqa: BLE001 - teardown must go on
                log.exception("closing %s", dev.name)
        result = None
        try:
            result = self.stop_recording()
        finally:
            self.monitor.stop()
            self.bus.unsubscribe(self.monitor)
            for emu in self.emulators.values():
                emu.stop()
            gc.unfreeze()  # what lived through the session may be collected again
        return result


def hold_garbage_collection_short() -> None:
    """Collect now, before any device is supervised, then leave what exists out of later full collections
    (`gc.freeze`): a full collection holds every thread of the process, and on a long-running workstation it grew to
    hundreds of milliseconds (measured in the test process: up to 538 ms with 480 000 objects), time in which no
    watchdog can look (drivers/silence.py) and no heartbeat goes out. `Rig.close` unfreezes them."""
    gc.collect()
    gc.freeze()


def check_ports_distinct(ports: dict[str, str]) -> None:
    """The same serial port given for two devices is refused before anything is opened (UserError naming both)."""
    seen: dict[str, str] = {}
    for name, port in ports.items():
        key = str(Path(port).expanduser().resolve()) if port else port
        if key in seen:
            raise UserError(f"The {seen[key]} port and the {name} port are both {port}: each device needs its own "
                            "port. Give the light's port in the light field and the pen's in the pen field.")
        seen[key] = name


class Closed(NamedTuple):
    """A session's recording once closed. `failure`: why the recorder stopped early or could not close the file (a
    full disk), else None. `sha256` is None when no checksum could be written, and then `checksum_failure` says
    why in words."""

    path: Path | None
    sha256: str | None
    failure: str | None
    checksum_failure: str | None = None
    signature_failure: str | None = None  # why no .sig was written beside a file that has its checksum
    recorded_trips: frozenset | None = None  # outcome.trip_key of each interlock event in the file; None: unread

    @classmethod
    def of(cls, rec, sha256: str | None) -> Closed:
        """The recorder `rec` (a SessionRecorder) once its close returned `sha256`."""
        failure = None if rec.error is None else "; ".join(filter(None, (str(rec.error), rec.unclosed)))
        return cls(rec.path, sha256, failure, rec.checksum_failure, rec.signature_failure,
                   recorded_trip_keys(rec.path))

    @property
    def checksum_words(self) -> str:
        """'sha256 <hex>', and why the file is not signed if it is not, or why there is no checksum: the one wording
        of the runner's summary and the window's."""
        if self.sha256 is not None:
            unsigned = f"; not signed: {self.signature_failure}" if self.signature_failure else ""
            return f"sha256 {self.sha256}{unsigned}"
        return f"sha256 not written: {self.checksum_failure or 'the recording could not be closed'}"


class NotConnectedError(UserError):
    """A device that did not answer or whose link failed while connecting: a device's failure (the runner's exit
    status for AbortCause.DEVICE, 5; it was 2, "bad input": eleventh session's tester), in words as any UserError."""

    exit_code = EXIT_CODES[AbortCause.DEVICE]


def recorded_trip_keys(path: Path) -> frozenset | None:
    """The trips a closed recording holds (outcome.trip_key of its interlock events), read back from the file: what
    the summary marks as in it is what it is (a fresh tester of issue 12: a trip made during the close, listed and
    printed as the session's, was not in the file). None if the file cannot be read."""
    from workstation.recording import Recording, RecordingError
    from workstation.session.outcome import trip_key

    try:
        with Recording.open(path) as rec:
            return frozenset(trip_key(e.details) for e in rec.events if e.kind == "interlock")
    except (RecordingError, OSError) as exc:
        log.info("the trips in %s were not read back: %s", path, exc)
        return None


def close_recording(rig: Rig) -> Closed:
    """Close the session's recording (`Closed`; all None when nothing was recorded)."""
    from workstation.recording import RecordingError

    rec = rig.recorder
    if rec is None:
        return Closed(None, None, None)
    # A device last seen active (unplugged mid-exposure) still gets the monitor's telemetry verdict: it goes into the
    # file, not after it (a trip the runner printed 30 ms after the recording closed: fresh tester of issue 12).
    if rig.monitor.alive() and rig.monitor.verdict_pending():
        wait_seen(lambda: not rig.monitor.verdict_pending(), RESEND_STOP_WALL_S)
    try:
        path, sha = rig.stop_recording()
    except RecordingError as exc:
        return Closed(rec.path, None, str(exc))
    return Closed.of(rec, sha)
