"""`python main.py emulate light|pen`: run one device emulator on a pty and print its port until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "emulate",
        help="run a device emulator on a pseudo-terminal and print its port",
        description=(
            "Start an emulated device (the real wire protocol over a pty) and print the port path to open with any "
            "serial program or with the drivers. Runs until Ctrl-C."
        ),
    )
    p.add_argument("device", choices=("light", "pen"), help="which device to emulate")
    p.add_argument("--rate-hz", type=float, default=2000.0, help="telemetry sample rate (default 2000)")
    p.add_argument("--samples-per-frame", type=int, default=20, help="samples per TELEMETRY frame (default 20)")
    p.add_argument("--baud", type=int, default=None, help="pace output at baud/10 bytes/s (default: unthrottled)")
    p.add_argument("--corrupt-rate", type=float, default=0.0, help="fraction of outgoing bytes to corrupt (0..1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise and corruption generators (default 0)")
    p.add_argument("--port", default=None, help="path of the symlink to create (default: in a new temp directory)")
    p.add_argument("--no-contact", action="store_true", help="start with no skin contact")
    p.add_argument("--status-every", type=float, default=0.0, help="print the device state every N seconds (0: off)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from drivers.emulators import LightEmulator, PenEmulator
    from drivers.errors import UserError

    cls = LightEmulator if args.device == "light" else PenEmulator
    try:
        emu = cls(
            rate_hz=args.rate_hz,
            samples_per_frame=args.samples_per_frame,
            baud=args.baud,
            corrupt_rate=args.corrupt_rate,
            seed=args.seed,
            port=args.port,
            contact=not args.no_contact,
        )
    except ValueError as exc:
        raise UserError(f"Cannot start the {args.device} emulator: {exc}.") from exc
    done = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    emu.start()
    try:
        print(emu.port, flush=True)
        print(f"{args.device} emulator on {emu.port} (-> {emu.pty_path}); Ctrl-C to stop", file=sys.stderr, flush=True)
        while not done.wait(args.status_every or 0.5):
            if args.status_every:
                print(_summary(emu.state()), file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0


def _summary(state: object) -> str:
    fields = ("armed", "active", "contact", "faults", "heartbeats_received", "telemetry_frames_sent")
    extra = ("dose_mj_cm2", "irradiance_mw_cm2", "lamp_temp_c", "stroke_rate_hz", "depth_mm", "motor_current_ma")
    parts = [f"{name}={getattr(state, name)}" for name in fields]
    parts += [f"{name}={getattr(state, name):.2f}" for name in extra if hasattr(state, name)]
    return f"{time.strftime('%H:%M:%S')} " + " ".join(parts)
