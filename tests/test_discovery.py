"""Drivers are discovered through entry points; a broken one is listed with its error, never dropped."""

import json
import sys

import pytest

from drivers import discovery
from drivers.light import UVB308Light
from drivers.pen import MicroneedlingPen
from drivers.types import BoundsError
from main import main


def test_builtin_drivers_are_found_through_entry_points():
    entries = {e.name: e for e in discovery.discover()}
    assert entries["light-uvb308"].cls is UVB308Light
    assert entries["pen-mn"].cls is MicroneedlingPen
    assert discovery.driver_for("light") is UVB308Light
    assert discovery.driver_for("needling") is MicroneedlingPen


@pytest.fixture
def broken_plugin(tmp_path, monkeypatch):
    """A third-party distribution on sys.path whose driver module fails to import."""
    dist = tmp_path / "brokenlight-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenlight\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[workstation.drivers]\nbroken-light = brokenlight_mod:Driver\n")
    (tmp_path / "brokenlight_mod.py").write_text("import a_module_that_does_not_exist\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("brokenlight_mod", None)


def test_a_driver_that_fails_to_import_is_listed_with_its_error(broken_plugin, capsys):
    entries = {e.name: e for e in discovery.discover()}
    broken = entries["broken-light"]
    assert broken.cls is None and "a_module_that_does_not_exist" in broken.error
    assert entries["light-uvb308"].ok  # the others still load
    assert main(["drivers"]) == 1
    out = capsys.readouterr().out
    assert "broken-light  FAILED TO LOAD" in out and "a_module_that_does_not_exist" in out
    assert "light-uvb308" in out


def test_drivers_command_json_lists_channels_with_units(capsys):
    assert main(["drivers", "--json"]) == 0
    doc = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    units = {c["name"]: c["unit"] for c in doc["light-uvb308"]["channels"]}
    assert units["irradiance_mw_cm2"] == "mW/cm²" and units["dose_mj_cm2"] == "mJ/cm²"
    pen_bounds = {b["name"]: b for b in doc["pen-mn"]["bounds"]}
    assert pen_bounds["depth_mm"]["max"] == 2.5


@pytest.mark.parametrize(
    ("cls", "param", "value"),
    [
        (UVB308Light, "target_dose_mj_cm2", 0),
        (UVB308Light, "target_dose_mj_cm2", 5000.5),
        (UVB308Light, "target_dose_mj_cm2", float("nan")),
        (UVB308Light, "target_dose_mj_cm2", "lots"),
        (MicroneedlingPen, "depth_mm", 2.55),
        (MicroneedlingPen, "depth_mm", 1.02),
        (MicroneedlingPen, "stroke_rate_hz", 200),
        (MicroneedlingPen, "speed", 1),
    ],
)
def test_out_of_bounds_is_refused_before_anything_is_sent(cls, param, value):
    dev = cls("/dev/does-not-exist")  # never connected: a byte sent would raise NotConnected instead
    with pytest.raises(BoundsError):
        dev.set(param, value)
