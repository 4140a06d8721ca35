"""Device emulators: a physical model of each device behind the real wire protocol, served on a pty pair.

    with LightEmulator(seed=1) as emu:
        serial.Serial(emu.port)  # exactly as a driver opens hardware

`python main.py emulate light|pen` starts one from the command line and prints its port.
"""

from drivers.emulators.base import Emulator, EmulatorState
from drivers.emulators.lamp import LampParams
from drivers.emulators.light import LightEmulator, LightState
from drivers.emulators.link import LinkStats
from drivers.emulators.motor import PenParams
from drivers.emulators.pen import PenEmulator, PenState

__all__ = [
    "Emulator",
    "EmulatorState",
    "LampParams",
    "LightEmulator",
    "LightState",
    "LinkStats",
    "PenEmulator",
    "PenParams",
    "PenState",
]
