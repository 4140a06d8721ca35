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
    assert "which is not installed" in broken.error and "ModuleNotFoundError" not in broken.error  # in words
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
    assert (doc["light-uvb308"]["interface"], doc["light-uvb308"]["active_channel"]) == ("LightSource", "shutter_open")
    assert (doc["pen-mn"]["interface"], doc["pen-mn"]["active_channel"]) == ("NeedlingPen", "running")


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
        dev._set(param, value)


def test_the_typed_setters_refuse_out_of_bounds_before_anything_is_sent():
    light, pen = UVB308Light("/dev/does-not-exist"), MicroneedlingPen("/dev/does-not-exist")
    for call in (lambda: light.set_target_dose(5000.5), lambda: pen.set_depth(2.6), lambda: pen.set_stroke_rate(49)):
        with pytest.raises(BoundsError, match="outside the device's range"):
            call()


def test_parameters_are_set_only_through_the_typed_setters():
    assert not hasattr(MicroneedlingPen, "set") and not hasattr(UVB308Light, "set")


MISFITS = {
    # declares kind "light" but implements the needling interface
    "misfit-light": ("from dataclasses import replace\nfrom drivers.pen import MicroneedlingPen\n"
                     "class Driver(MicroneedlingPen):\n    INFO = replace(MicroneedlingPen.INFO, kind='light')\n",
                     "does not implement drivers.interfaces.LightSource"),
    # a kind the application does not drive
    "misfit-laser": ("from dataclasses import replace\nfrom drivers.light import UVB308Light\n"
                     "class Driver(UVB308Light):\n    INFO = replace(UVB308Light.INFO, kind='laser')\n",
                     "declares kind 'laser'"),
    # an active channel it does not declare
    "misfit-active": ("from drivers.light import UVB308Light\n"
                      "class Driver(UVB308Light):\n    active_channel = 'emitting'\n",
                      "active_channel 'emitting' is not one of its declared channels"),
    # an active channel that is not a bool (from the fresh tester of issue 16)
    "misfit-floatactive": ("from drivers.light import UVB308Light\n"
                           "class Driver(UVB308Light):\n    active_channel = 'irradiance_mw_cm2'\n",
                           "must be a bool channel"),
    # a light without a channel the safety monitor reads (it once disabled the host's dose checks)
    "misfit-nolamp": ("from dataclasses import replace\nimport numpy as np\nfrom drivers.light import UVB308Light\n"
                      "class Driver(UVB308Light):\n"
                      "    INFO = replace(UVB308Light.INFO, channels=tuple(c for c in UVB308Light.INFO.channels "
                      "if c.name != 'lamp_temp_c'))\n"
                      "    BLOCK_DTYPE = np.dtype([(n, UVB308Light.BLOCK_DTYPE[n]) for n in "
                      "UVB308Light.BLOCK_DTYPE.names if n != 'lamp_temp_c'])\n",
                      "does not declare the channel(s) lamp_temp_c, which the safety monitor reads"),
    # not a device at all
    "misfit-object": ("class Driver:\n    pass\n", "must subclass drivers.interfaces.Device"),
}


@pytest.fixture
def misfit_plugins(tmp_path, monkeypatch):
    """Third-party distributions whose driver classes load but do not implement the interface of their kind."""
    dist = tmp_path / "misfits-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: misfits\nVersion: 0.1\n")
    lines = [f"{name} = misfit_{name.split('-')[1]}:Driver" for name in MISFITS]
    (dist / "entry_points.txt").write_text("[workstation.drivers]\n" + "\n".join(lines) + "\n")
    for name, (source, _) in MISFITS.items():
        (tmp_path / f"misfit_{name.split('-')[1]}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in MISFITS:
        sys.modules.pop(f"misfit_{name.split('-')[1]}", None)


def test_a_driver_must_implement_the_interface_of_its_kind(misfit_plugins):
    entries = {e.name: e for e in discovery.discover()}
    for name, (_, words) in MISFITS.items():
        assert entries[name].cls is None and words in entries[name].error, (name, entries[name].error)
    assert discovery.driver_for("light") is UVB308Light  # the misfits never stand in for a light


def test_a_driver_written_against_the_old_active_field_name_still_declares_its_active_channel():
    """`ACTIVE_FIELD` was the name before `active_channel` (issue 16): either spelling declares both."""

    class OldStyle(MicroneedlingPen):
        ACTIVE_FIELD = "skin_contact"

    class NewStyle(MicroneedlingPen):
        active_channel = "armed"

    assert (OldStyle.active_channel, OldStyle.ACTIVE_FIELD) == ("skin_contact", "skin_contact")
    assert (NewStyle.active_channel, NewStyle.ACTIVE_FIELD) == ("armed", "armed")
    assert (MicroneedlingPen.active_channel, UVB308Light.ACTIVE_FIELD) == ("running", "shutter_open")
    assert OldStyle("/dev/does-not-exist")._plausibility.active_field == "skin_contact"


@pytest.fixture
def vendor_light(tmp_path, monkeypatch):
    """A manufacturer's light driver whose entry-point name sorts before the built-in one."""
    dist = tmp_path / "acme-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[workstation.drivers]\n0-acme-lx400 = acme_lx400:Driver\n")
    (tmp_path / "acme_lx400.py").write_text(
        "from dataclasses import replace\nfrom drivers.light import UVB308Light\n"
        "class Driver(UVB308Light):\n"
        "    INFO = replace(UVB308Light.INFO, name='0-acme-lx400', model_prefixes=('ACME-LX400',))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("acme_lx400", None)


def test_simulation_drives_its_emulators_with_their_own_drivers_whatever_else_is_installed(vendor_light):
    """From the fresh tester of issue 16: a vendor's light named to sort first took the built-in light emulator in
    simulation and the trainer's session failed. The emulator's model chooses its driver."""
    from drivers.emulators.light import LightEmulator

    vendor = discovery.driver_for("light")
    assert vendor is not UVB308Light and vendor.INFO.model_prefixes == ("ACME-LX400",)  # first by name, as before
    assert discovery.driver_for("light", model=LightEmulator(seed=1).model) is UVB308Light
    with pytest.raises(LookupError, match="light driver for the model 'XYZ-1'"):
        discovery.driver_for("light", model="XYZ-1")
