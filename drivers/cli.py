"""`python main.py drivers`: list the discovered drivers, their channels and any load errors."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("drivers", help="list the device drivers found (entry-point group workstation.drivers)",
                              description="List every registered device driver: name, kind, version, channels with "
                              "units, command bounds, and the error of any driver that failed to load.")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from drivers.discovery import discover
    from drivers.interfaces import KIND_INTERFACES

    entries = discover()
    if args.json:
        out = []
        for e in entries:
            d = {"name": e.name, "target": e.target, "distribution": e.distribution, "error": e.error}
            if e.cls is not None:
                info = e.cls.INFO
                d |= {"kind": info.kind, "interface": KIND_INTERFACES[info.kind].__name__,
                      "active_channel": e.cls.active_channel,
                      "version": info.version, "nominal_rate_hz": info.nominal_rate_hz,
                      "channels": [{"name": c.name, "unit": c.unit, **_plausible(c)} for c in info.channels],
                      "models": list(info.model_prefixes), "protocol_versions": list(info.protocol_versions),
                      "bounds": [{"name": b.name, "unit": b.unit, "min": b.minimum, "max": b.maximum,
                                  "step": b.step} for b in info.bounds]}
            out.append(d)
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0 if all(e.ok for e in entries) else 1
    if not entries:
        print("No drivers are registered. Reinstall the workstation (`make setup`).")
        return 1
    for e in entries:
        if e.cls is None:
            print(f"{e.name}  FAILED TO LOAD ({e.target}, from {e.distribution})\n    {e.error}\n")
            continue
        info = e.cls.INFO
        print(f"{e.name}  {info.kind} ({KIND_INTERFACES[info.kind].__name__}, active while "
              f"{e.cls.active_channel})  v{info.version}  {info.nominal_rate_hz:g} Hz  ({e.distribution})")
        print(f"    {info.description}")
        print("    channels: " + ", ".join(f"{c.name} [{c.unit}]" for c in info.channels))
        print(f"    drives: models {', '.join(info.model_prefixes) or 'any'}…, protocol "
              f"{', '.join(str(v) for v in info.protocol_versions)}")
        for c in info.channels:
            if c.checked:
                rise = f", rises ≤ {c.max_rise_per_s:g} {c.unit}/s" if c.max_rise_per_s < float("inf") else ""
                mono = ", never falls during an exposure" if c.exposure_monotonic else ""
                print(f"    plausible {c.name}: {c.minimum:g}–{c.maximum:g} {c.unit}{mono}{rise}")
        for b in info.bounds:
            step = f" in steps of {b.step:g}" if b.step else ""
            print(f"    set {b.name}: {b.minimum:g}–{b.maximum:g} {b.unit}{step}")
        print()
    return 0 if all(e.ok for e in entries) else 1


def _plausible(c) -> dict:
    """A channel's declared plausibility as JSON (infinite bounds as null)."""
    def finite(v: float) -> float | None:
        return v if abs(v) != float("inf") else None

    return {"minimum": finite(c.minimum), "maximum": finite(c.maximum), "exposure_monotonic": c.exposure_monotonic,
            "max_rise_per_s": finite(c.max_rise_per_s)}
