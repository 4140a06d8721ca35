"""Driver for the UVB/308 nm phototherapy handpiece (dose-controlled exposure: the device closes its own shutter)."""

from __future__ import annotations

import numpy as np

from drivers import protocol as p
from drivers.base import SerialDevice
from drivers.channels import LIGHT_CHANNELS
from drivers.types import Bound, DriverInfo


class UVB308Light(SerialDevice):
    INFO = DriverInfo(
        name="light-uvb308",
        kind="light",
        version="1.0.0",
        description="Targeted UVB / 308 nm phototherapy handpiece, Cicatrix wire protocol v1",
        nominal_rate_hz=2000.0,
        channels=LIGHT_CHANNELS,
        # The device's own range: the NB-UVB maximum for skin types V–VI (CLINICAL.md, JAAD Table IV). Protocol caps,
        # lower, are enforced by the dose engine and the safety monitor.
        bounds=(Bound("target_dose_mj_cm2", "mJ/cm²", 1.0, 5000.0),),
    )
    BLOCK_DTYPE = p.LIGHT_BLOCK
    PARAMS = {"target_dose_mj_cm2": p.LightParam.TARGET_DOSE_MJ_CM2}
    FAULTS = p.LightFault
    DEFAULT_NAME = "light"

    def set_target_dose(self, dose_mj_cm2: float) -> float:
        return self.set("target_dose_mj_cm2", dose_mj_cm2)

    def _decode_telemetry(self, payload: bytes, seq: int, t_arrival: float) -> np.ndarray:
        return p.decode_light_telemetry(payload, seq, t_arrival)
