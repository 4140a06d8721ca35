"""Example driver package for Cicatrix: the EXL-311 narrowband UVB handpiece and its emulator.

`ExampleLight` (driver.py) is registered in the `workstation.drivers` entry-point group; `ExampleLightEmulator`
(emulator.py) serves the device on a pseudo-terminal so the driver kit's contract tests (drivers.testing) can run
against it. Nothing here imports the workstation application.
"""

from cicatrix_example_light.driver import ExampleLight
from cicatrix_example_light.emulator import ExampleLightEmulator

__all__ = ["ExampleLight", "ExampleLightEmulator"]
