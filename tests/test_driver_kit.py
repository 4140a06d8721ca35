"""The driver kit from outside: the example package (examples/cicatrix-example-light, installed by `make test` as a
manufacturer's package would be) is found by `main.py drivers` and does not displace the built-in light."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from drivers import discovery
from drivers.light import UVB308Light

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cicatrix-example-light"


def _installed() -> None:
    try:
        distribution("cicatrix-example-light")
    except PackageNotFoundError:
        raise AssertionError(f"the example driver package is not installed: `pip install -e {EXAMPLE}` "
                             "(`make test` does it)") from None


def test_the_example_package_is_found_by_the_drivers_command():
    _installed()
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "drivers", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = {d["name"]: d for d in json.loads(out.stdout)}
    example = doc["vendor-example-light"]
    assert example["error"] is None and example["distribution"] == "cicatrix-example-light"
    assert example["kind"] == "light" and example["models"] == ["EXL-311"] and example["protocol_versions"] == [2]
    assert {b["name"]: b["max"] for b in example["bounds"]}["target_dose_mj_cm2"] == 3000.0
    units = {c["name"]: c["unit"] for c in example["channels"]}
    assert units["irradiance_mw_cm2"] == "mW/cm²" and units["dose_mj_cm2"] == "mJ/cm²"


def test_an_installed_third_party_light_does_not_replace_the_built_in_one():
    _installed()
    names = [e.name for e in discovery.discover() if e.ok and e.cls.INFO.kind == "light"]
    assert names == ["light-uvb308", "vendor-example-light"]
    assert discovery.driver_for("light") is UVB308Light
    assert discovery.driver_for("light", "vendor-example-light").INFO.model_prefixes == ("EXL-311",)


def test_the_example_package_imports_nothing_from_the_application():
    code = ("import sys, cicatrix_example_light, drivers.testing\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'workstation'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=EXAMPLE, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
