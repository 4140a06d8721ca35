"""Which device plays which part, and which of its channels means "active", from what its driver declares.

A device's role is its driver's kind (`DriverInfo.kind`: "light" or "needling"), never its name: the session's light
is the device whose driver is a light, whatever the rig calls it. A plan step's modality names the kind it needs
("light" or "needling"). Which block channel is 1 while the device emits or needles is the driver's `active_channel`
(light: "shutter_open", pen: "running"); for a recording it comes from the driver declaration recorded in the file
(`driver_name`, `driver_kind`, docs/recording-format.md). The safety monitor, the session, the window's activity
watch and the recording's summary all ask here, so the answer is found in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

LIGHT = "light"  # DriverInfo.kind of a light source (drivers/types.py KIND_WORDS)
NEEDLING = "needling"  # DriverInfo.kind of a needling pen
KINDS = (LIGHT, NEEDLING)


def kind_of(device: Any) -> str:
    """The device's kind as its driver declares it (`INFO.kind`)."""
    return str(device.INFO.kind)


def active_channel(device: Any) -> str | None:
    """The block channel that is 1 while the device emits or needles, as its driver declares it (None: it declares
    none, as a recorded device whose driver is not installed)."""
    return device.active_channel


def named_of_kind(devices: Mapping[str, Any], kind: str) -> str | None:
    """The name of the first device (in the mapping's order) whose driver is of `kind`, or None if none is."""
    return next((name for name, dev in devices.items() if kind_of(dev) == kind), None)


def used_by_steps(kinds_by_name: Mapping[str, str], modalities: Iterable[str]) -> list[str]:
    """The names (in the mapping's order) of the devices a plan's steps use: those whose kind is one of the steps'
    modalities ("light", "needling"). All of them when no step names a kind any device has (nothing planned)."""
    wanted = set(modalities)
    used = [name for name, kind in kinds_by_name.items() if kind in wanted]
    return used or list(kinds_by_name)


def lights(devices: Mapping[str, Any]) -> list[str]:
    """The names of the light sources among `devices`, in order: stops go to them first (the light is the hazard)."""
    return [name for name, dev in devices.items() if kind_of(dev) == LIGHT]


def light_first(devices: Mapping[str, Any]) -> list[str]:
    """Every device name, the light sources first (an E-stop or a session stop closes the light before the pen)."""
    first = lights(devices)
    return first + [name for name in devices if name not in first]


def active_channels(devices: Mapping[str, Any]) -> dict[str, str | None]:
    """{device name: its active channel} for a rig's devices."""
    return {name: active_channel(dev) for name, dev in devices.items()}


def recorded_of_kind(devices: Mapping[str, Any], kind: str) -> str | None:
    """The name of the first recorded device (`Recording.devices`: name -> DeviceInfo) whose recorded driver kind is
    `kind`, or None."""
    return next((name for name, info in devices.items() if info.driver_kind == kind), None)


def recorded_active_channel(info: Any) -> str | None:
    """The active channel of a recorded device (a `DeviceInfo`: `driver_name`, `driver_kind`, `dtype`), from the
    driver declaration in the file: the installed driver of that name, else of that kind, declares it; None if no such
    driver is installed or the recorded telemetry lacks the channel."""
    from drivers.discovery import driver_for

    fields = info.dtype.names or ()
    for name in (info.driver_name or None, None):
        try:
            channel = driver_for(info.driver_kind, name).active_channel
        except LookupError:
            continue
        if channel in fields:
            return channel
    return None


def active_flags(block: np.ndarray, channel: str | None) -> np.ndarray | None:
    """The block's active channel as booleans, or None if the block has no such channel."""
    if channel is None or channel not in (block.dtype.names or ()):
        return None
    return block[channel].astype(bool)
