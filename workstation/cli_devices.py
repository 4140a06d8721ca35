"""`python main.py devices`: the light devices on record, their lamp hours, last radiometer check and due date; and
the dosimetry QA commands (record a check, set the interval, override a block with a reason)."""

from __future__ import annotations

import argparse
import time
from datetime import date

from workstation.errors import UserError
from workstation.progname import command


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "devices", help="devices on record, lamp hours, radiometer checks (dosimetry QA)",
        description="List the devices on record with lamp hours, last radiometer check and due date (no action), or "
        "record a check, set the check interval, or override an overdue calibration for today with a reason.")
    p.add_argument("--store", metavar="FILE|URL", help="database file or store URL (default: the clinic's, or the "
                   "training one with --training)")
    p.add_argument("--training", action="store_true", help="use the training database")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the signing-in account's password from standard input (scripts)")
    sub = p.add_subparsers(dest="devices_action", metavar="ACTION")
    p.set_defaults(func=_list)
    c = sub.add_parser("check", help="record a radiometer check of a light",
                       description="Record a check: the reference radiometer's reading at the handpiece window and "
                       "the irradiance the device reported at the same moment. With --simulate, the emulated light "
                       "is connected, exposed briefly, and read by the emulator's radiometer (training store only).")
    c.add_argument("--serial", help="device serial number (not with --simulate)")
    c.add_argument("--meter", required=True, help="reference radiometer, make and serial number")
    c.add_argument("--measured", type=float, help="reference reading, mW/cm²")
    c.add_argument("--reported", type=float, help="the device's reading at the same moment, mW/cm²")
    c.add_argument("--who", required=True, help="who made the check: in the clinic store, your account (you sign in)")
    c.add_argument("--simulate", action="store_true", help="check the emulated light (training database)")
    c.set_defaults(func=_check)
    i = sub.add_parser("interval", help="set the days between radiometer checks (a clinic setting)")
    i.add_argument("days", type=int)
    i.add_argument("--who", help="in the clinic store: an administrator's account (a clinic setting; you sign in)")
    i.set_defaults(func=_interval)
    o = sub.add_parser("override", help="use a light with an overdue or mismatched calibration today, with a reason")
    o.add_argument("--serial", required=True)
    o.add_argument("--reason", required=True)
    o.add_argument("--who", required=True, help="in the clinic store, your account (you sign in)")
    o.set_defaults(func=_override)


def _open(args: argparse.Namespace, *, training: bool | None = None, action: str | None = None,
          read_only: bool = False):
    """The store; for a change (`action`) to the clinic store, `--who` signs in first (anyone cannot be anyone:
    the account's password, and a role allowed to do it), so the trail and the record name a real account."""
    from workstation.cli_records import _passwords, say_trail_findings
    from workstation.store import operators as ops
    from workstation.store.clinic_store import ClinicStore

    training = args.training if training is None else training
    target = args.store
    if target is None and not training:  # the clinic store in force: the settings' store.url, else its file
        from workstation.cli_settings import settings_from_args

        target = settings_from_args(args).store_target()
    store = ClinicStore.open(target, training=training, read_only=read_only)  # a list never creates a store
    say_trail_findings(store)
    if action is not None and store.role == "clinic":
        try:
            who = getattr(args, "who", None)
            if not who:
                raise UserError("Changing the clinic's devices record needs your account: give --who ACCOUNT.")
            ops.sign_in(store, who, _passwords(args)(f"password of {who}: "), action)
        except BaseException:
            store.close()
            raise
    return store


def _list(args: argparse.Namespace) -> int:
    from workstation.store import calibration as cal

    with _open(args, read_only=True) as store:
        rows = cal.devices(store)
        days = cal.interval_days(store)
        overrides = {d.serial_number: cal.override_on(store, d.serial_number, date.today()) for d in rows}
    print(f"Devices on record ({len(rows)}); radiometer check every {days} days")
    if not rows:
        print(f"  none yet: a device is recorded when it is connected or checked (`{command('devices check')}`).")
    today = date.today()
    for d in rows:
        hours = "-" if d.lamp_hours is None else f"{d.lamp_hours:.1f} h"
        last = "never" if d.last_check is None else (f"{d.last_check.checked_on} factor {d.last_check.factor:g} "
                                                     f"({d.last_check.reference_meter}, {d.last_check.who})")
        due = "now" if d.due_on is None else (f"{d.due_on}" + (" OVERDUE" if d.due_on < today else ""))
        print(f"  {d.kind:<8} {d.serial_number:<18} {d.model:<40} lamp {hours:<10} last check {last}; due {due}"
              + (f"; overridden today: {overrides[d.serial_number]}" if overrides[d.serial_number] else ""))
    return 0


def _check(args: argparse.Namespace) -> int:
    from workstation.store import calibration as cal

    if args.simulate:
        serial, identity, reported, measured = _simulated_reading()
        with _open(args, training=True) as store:
            cal.record_device(store, identity, "light")
            check = cal.add_check(store, serial, date.today(), args.meter, measured, reported, args.who)
    else:
        if args.serial is None or args.measured is None or args.reported is None:
            raise UserError("A check needs --serial, --measured and --reported (mW/cm²), or --simulate.")
        cal.check_reading(args.measured, args.reported)  # an impossible reading is refused before signing in
        with _open(args, action="clinical") as store:
            check = cal.add_check(store, args.serial, date.today(), args.meter, args.measured, args.reported,
                                  args.who)
    print(f"Radiometer check recorded for {check.serial_number}: measured {check.measured_mw_cm2:.2f} mW/cm², "
          f"reported {check.reported_mw_cm2:.2f} mW/cm², factor {check.factor:g} ({check.who}).")
    return 0


def _simulated_reading() -> tuple[str, dict, float, float]:
    """Connect the emulated light, expose 30 mJ/cm² into the radiometer, and read both sides while open."""
    from drivers.emulators.lamp import LampParams
    from drivers.emulators.light import LightEmulator
    from drivers.light import UVB308Light
    from workstation.bus import SessionBus

    emu = LightEmulator(lamp=LampParams(warmup_s=0.2)).start()
    reported: list[float] = []

    class _Sink:
        def on_block(self, device, block):
            reported.extend(block["irradiance_mw_cm2"][block[UVB308Light.active_channel].astype(bool)].tolist())

        def on_event(self, event):
            return None

        def on_command(self, record):
            return None

    bus = SessionBus()
    bus.subscribe(_Sink())
    try:
        with UVB308Light(emu.port, bus=bus) as light:
            time.sleep(0.4)  # warm
            light.set_target_dose(30.0)
            light.arm()
            light.start()
            time.sleep(0.1)
            measured = emu.radiometer_reading_mw_cm2()
            deadline = time.monotonic() + 3.0
            while emu.state().active and time.monotonic() < deadline:
                time.sleep(0.01)
            identity = light.identity.as_dict()
    finally:
        emu.stop()
    if not reported:
        raise UserError("The emulated light reported no irradiance during the check; try again.")
    reported_now = sorted(reported)[len(reported) // 2]  # median of the open-shutter samples
    return identity["serial_number"], identity, reported_now, measured


def _interval(args: argparse.Namespace) -> int:
    from workstation.store import calibration as cal

    with _open(args, action="protocols") as store:
        cal.set_interval_days(store, args.days)
    print(f"Radiometer checks are due every {args.days} days.")
    return 0


def _override(args: argparse.Namespace) -> int:
    from workstation.store import calibration as cal

    with _open(args, action="clinical") as store:
        cal.override(store, args.serial, args.reason, args.who, date.today())
    print(f"The calibration of {args.serial} is overridden for today ({args.reason}, {args.who}).")
    return 0
