"""The driver kit's shared contract (drivers.testing) against the EXL-311 driver and its emulator, over a real pty."""

import pytest

# A failed contract assertion shows the values it compared: pytest rewrites asserts only in modules it is told of
# before they are first imported (docs/writing-a-driver.md).
pytest.register_assert_rewrite("drivers.testing")

from cicatrix_example_light import ExampleLight, ExampleLightEmulator  # noqa: E402

from drivers.emulators import LightEmulator  # noqa: E402
from drivers.errors import WrongDevice  # noqa: E402
from drivers.light import UVB308Light  # noqa: E402
from drivers.testing import LightSourceContract  # noqa: E402


class TestExampleLightContract(LightSourceContract):
    driver_class = ExampleLight
    settings = (("target_dose_mj_cm2", 50.0),)
    out_of_bounds = ("target_dose_mj_cm2", 3000.5)  # inside the built-in light's range, outside this device's

    def make_emulator(self, **kw):
        return ExampleLightEmulator(seed=3, **kw)

    def activate(self, drv):
        drv.set_target_dose(3000)  # 75 s at 40 mW/cm²: active for as long as a test needs
        drv.arm()
        drv.start()


@pytest.mark.parametrize(("driver", "emulator"), [(ExampleLight, LightEmulator), (UVB308Light, ExampleLightEmulator)])
def test_each_light_driver_refuses_the_other_model(driver, emulator):
    """Same kind, same protocol, another model: the identity check tells them apart, and nothing is set."""
    with emulator() as emu:
        drv = driver(emu.port, auto_reconnect=False)
        with pytest.raises(WrongDevice, match="model"):
            drv.connect()
        assert not drv.connected and not emu.state().armed
        drv.close()


def test_the_device_refuses_what_the_host_would_have_refused():
    """Two bounds, one on each side of the wire: sent past the host's check (the driver's private send, as a
    faulty host would), a dose over 3000 mJ/cm² is refused by the emulated device itself."""
    from drivers import protocol as p
    from drivers.errors import CommandRefused

    with ExampleLightEmulator() as emu:
        drv = ExampleLight(emu.port)
        drv.connect()
        try:
            with pytest.raises(CommandRefused) as refused:
                drv._send(p.Msg.SET, p.SET_PAYLOAD.pack(p.LightParam.TARGET_DOSE_MJ_CM2, 4000.0), "set",
                          {"param": "target_dose_mj_cm2", "value": 4000.0})
            assert refused.value.code == p.Refusal.OUT_OF_BOUNDS and "3000" in refused.value.reason
        finally:
            drv.close()
