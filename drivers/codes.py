"""Codes with one meaning each, shared by drivers and the workstation: what a `connection` event says happened, why an
interlock tripped, why a session was aborted. A consumer compares codes, never searches a message's words (messages
are for people and may change).

Events carry them in their details: a `connection` event has `details["link"]` (a `LinkEvent` value) and, when it is
a loss, `details["disconnect"]` (a `DisconnectReason` value); a `fault` event has `details["faults"]`, the list of the
fault bits' names as the driver's fault enum spells them (e.g. ["CONTACT_LOST"]); an `interlock` event has
`details["interlock"]`, an `InterlockCause` value.

All are `StrEnum`s: a member equals its value (`InterlockCause.ESTOP == "estop"`), so they are written to recordings and
JSON as plain text and older recordings' strings compare equal.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class LinkEvent(StrEnum):
    """What happened to the link with a device (`details["link"]` of a `connection` event)."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # the port is gone or refused; `details["disconnect"]` says why
    RECONNECTED = "reconnected"  # the port came back and the device was made safe
    TELEMETRY_LOST = "telemetry_lost"  # connected, but no telemetry for TELEMETRY_LOST_S
    TELEMETRY_RESUMED = "telemetry_resumed"
    SEQUENCE = "sequence"  # the device's frame numbers jumped back or restarted (informational)


class DisconnectReason(StrEnum):
    """Why a link was lost (`details["disconnect"]` of a `connection` event with link DISCONNECTED)."""

    READ_FAILED = "read_failed"  # the port raised on read: cable pulled, adapter gone
    WRITE_FAILED = "write_failed"  # the port raised or timed out on write
    READER_DIED = "reader_died"  # the driver's reader or heartbeat thread ended unexpectedly
    REFUSED = "refused"  # the device is not one this driver may drive (identity, protocol version)
    CLOSED = "closed"  # the host closed the link (end of session)


class InterlockCause(StrEnum):
    """Why an interlock tripped (`details["interlock"]` of an `interlock` event)."""

    TARGET_DOSE = "target_dose_reached"
    AREA_DOSE_CAP = "area_dose_cap"
    TELEMETRY_LOST = "telemetry_lost"
    HEARTBEAT_LOST = "heartbeat_lost"  # the device's own watchdog fired: it heard no heartbeat for 250 ms
    DISCONNECTED = "disconnected"
    CONTACT_LOST = "contact_lost"
    OVER_TEMPERATURE = "over_temperature"
    ESTOP = "estop"
    PROTOCOL_RULE = "protocol_rule"
    DEPTH_LIMIT = "depth_limit"
    DEVICE_FAULT = "device_fault"
    SENSOR_IMPLAUSIBLE = "sensor_implausible"  # the driver rejected a sample outside its channel's declaration
    BACKUP_TIME = "backup_time"  # the exposure ran past the backup time sent with its target


class AbortCause(StrEnum):
    """Why a session ended before its plan was done; the headless runner's exit code follows from it."""

    NONE = "none"  # ran to the end
    INTERLOCK = "interlock"  # an interlock tripped (exit 3)
    OPERATOR = "operator"  # STOP, Ctrl+C, SIGTERM, the window closed (exit 4)
    DEVICE = "device"  # a device failed or refused outside an interlock (exit 5)
    BAD_INPUT = "bad_input"  # the plan, scenario or a value was refused before treatment (exit 2)
    RECORDING = "recording"  # the recording could not be written (disk full): devices stopped (exit 3)
    STORE = "store"  # the store could not take the session's journal (disk full, server gone): devices stopped (exit 3)


def link_loss(event: Any) -> InterlockCause | None:
    """The interlock a `connection` event calls for, from its codes (above): DISCONNECTED for a link lost
    (`details["link"]` DISCONNECTED, or a `details["disconnect"]` reason), TELEMETRY_LOST for telemetry lost; None
    for the others. A high-severity connection event without a code (a driver that gives none) is a link in doubt:
    TELEMETRY_LOST, so it trips all the same."""
    link = event.details.get("link")
    if link == LinkEvent.DISCONNECTED or event.details.get("disconnect"):
        return InterlockCause.DISCONNECTED
    if link == LinkEvent.TELEMETRY_LOST or (link is None and event.severity == "high"):
        return InterlockCause.TELEMETRY_LOST
    return None
