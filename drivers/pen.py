"""Driver for the motorised microneedling pen."""

from __future__ import annotations

from drivers import protocol as p
from drivers.base import SerialDevice
from drivers.channels import PEN_CHANNELS
from drivers.interfaces import NeedlingPen
from drivers.types import Bound, DriverInfo


class MicroneedlingPen(SerialDevice, NeedlingPen):
    INFO = DriverInfo(
        name="pen-mn",
        kind="needling",
        version="1.1.0",
        description="Motorised microneedling pen, Cicatrix wire protocol v2",
        nominal_rate_hz=2000.0,
        channels=PEN_CHANNELS,
        model_prefixes=("MN-150",),
        protocol_versions=(p.PROTOCOL_VERSION,),
        # CLINICAL.md: depth never above 2.5 mm; automated pens 50–150 stamps/s.
        bounds=(
            Bound("depth_mm", "mm", 0.0, 2.5, step=0.05),
            Bound("stroke_rate_hz", "Hz", 50.0, 150.0),
        ),
    )
    BLOCK_DTYPE = p.PEN_BLOCK
    WIRE_HEADER, WIRE_SAMPLE = p.PEN_HEADER, p.PEN_SAMPLE
    PARAMS = {"depth_mm": p.PenParam.DEPTH_MM, "stroke_rate_hz": p.PenParam.STROKE_RATE_HZ}
    FAULTS = p.PenFault
    DEFAULT_NAME = "pen"
    active_channel = "running"

    def set_depth(self, depth_mm: float) -> float:
        """Set the needle depth (mm, 0–2.5 in 0.05 steps); returns the value sent. Raises BoundsError (nothing
        sent), NotConnected, CommandRefused, CommandTimeout."""
        return self._set("depth_mm", depth_mm)

    def set_stroke_rate(self, stroke_rate_hz: float) -> float:
        """Set the stroke rate (Hz, 50–150); returns the value sent. Raises as `set_depth`."""
        return self._set("stroke_rate_hz", stroke_rate_hz)
