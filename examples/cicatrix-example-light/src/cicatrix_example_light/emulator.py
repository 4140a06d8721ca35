"""The EXL-311's emulator: the built-in light model behind the real wire protocol on a pty, as the EXL-311.

It answers IDENTITY with the EXL-311 model, runs a narrowband lamp (40 mW/cm² at the window, a 0.3 s warm-up so
tests reach full output quickly) and refuses target doses above the device's 3000 mJ/cm², as the device would.
"""

from __future__ import annotations

from typing import Any

from cicatrix_example_light.driver import MODEL_PREFIX, TARGET_DOSE_RANGE_MJ_CM2
from drivers.emulators import LampParams, LightEmulator
from drivers.emulators.commands import Refused
from drivers.protocol import LightParam, Refusal

NARROWBAND_LAMP = LampParams(nominal_irradiance_mw_cm2=40.0, warmup_s=0.3)


class ExampleLightEmulator(LightEmulator):
    """Use as `with ExampleLightEmulator() as emu: ExampleLight(emu.port).connect()`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("lamp", NARROWBAND_LAMP)
        kwargs.setdefault("model", f"{MODEL_PREFIX} narrowband handpiece (emulated)")
        kwargs.setdefault("firmware", "2.0.0-emu")
        kwargs.setdefault("serial_number", "EXL311-EMU-0001")
        super().__init__(**kwargs)

    def _set(self, param: int, value: float, now: float) -> None:
        low, high = TARGET_DOSE_RANGE_MJ_CM2
        if param == LightParam.TARGET_DOSE_MJ_CM2 and not low <= value <= high:  # also refuses NaN
            raise Refused(Refusal.OUT_OF_BOUNDS, f"Target dose {value:g} mJ/cm² is outside {low:g}–{high:g} mJ/cm².")
        super()._set(param, value, now)
