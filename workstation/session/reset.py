"""The operator's reset: it clears what latched, in the safety monitor and in each device, only when the cause is gone.

A trip latches in the monitor (`SafetyMonitor.reset` clears that latch) and, for a fault the device reported, in the
device too (it refuses ARM until it gets RESET). `reset_checked` is what the window's *Reset interlocks* and a
scenario's `reset` do: it looks at telemetry that arrived after the request and refuses, naming the cause, while one
remains (a device disconnected or silent, still active, a lamp above the limit minus the hysteresis, skin contact not
back after contact_lost); then it sends RESET to every tripped or faulted device (the device refuses while its own
cause persists: a jammed motor, a failed lamp), confirms in telemetry that the device's fault bits are clear, and only
then clears the monitor's latch. It never restarts anything.
"""

from __future__ import annotations

from typing import NoReturn

from drivers.codes import InterlockCause
from drivers.silence import wait_seen
from workstation.bus import Event
from workstation.session.safety import (
    HOST_MAX_LAMP_TEMP_C,
    RESET_ANSWER_S,
    RESET_SETTLE_S,
    RESET_TEMP_HYSTERESIS_C,
    ResetRefused,
    SafetyMonitor,
    Trip,
)


def reset_checked(monitor: SafetyMonitor, who: str, seen: int | None = None) -> list[Trip]:
    """The operator's reset from the window or a runner: refused (ResetRefused, naming the cause) while any cause
    is still present; otherwise every device's latched fault is reset (RESET command) and then the monitor's
    latch. Returns the cleared trips. Waits for the devices' answers: call it off the GUI thread.

    `seen`: the monitor's `causes_seen` when the operator asked (the window takes it on the click; default: now).
    A cause or an E-stop after it (a STOP pressed while the devices answer the RESET) refuses the whole reset and
    clears nothing: only what the operator saw latched is ever cleared.

    Causes checked, from each device's connection and last telemetry: still active; disconnected or not
    answering (no telemetry for RESET_ANSWER_S); lamp above HOST_MAX_LAMP_TEMP_C − RESET_TEMP_HYSTERESIS_C;
    skin contact not back after a contact_lost trip; and whatever the device itself refuses to reset (a jammed
    motor, a failed lamp), which the device reports as CAUSE_PERSISTS."""
    if monitor.held is not None:  # the recording failed: no reset brings it back (SafetyMonitor.hold)
        _refused(monitor, who, [monitor.held])
    seen = monitor.causes_seen if seen is None else seen
    now = monitor.clock()
    tripped = monitor.tripped
    devices = dict(monitor.devices)
    blockers: list[str] = []
    to_reset: list[str] = []
    for name, dev in devices.items():
        row = monitor.last_row(name)
        needs = name in tripped or row.get("fault_bits", 0) != 0
        if not needs:
            continue
        port = getattr(dev, "port", "")
        where = f" ({port})" if port else ""
        if not getattr(dev, "connected", True):
            blockers.append(f"The {name}{where} is disconnected: plug it back in and wait until it is "
                            "connected again, then reset.")
            continue
        # judge the causes on telemetry sampled after the request: a frame can carry samples up to a frame old
        fresh = _wait_block(monitor, name, now + RESET_SETTLE_S, RESET_ANSWER_S + RESET_SETTLE_S)
        if not fresh or getattr(dev, "telemetry_lost", False):
            blockers.append(f"The {name}{where} is not answering (no telemetry for over "
                            f"{RESET_ANSWER_S * 1000:.0f} ms): check its cable and power, then reset.")
            continue
        row = monitor.last_row(name)
        if monitor.is_active(name):
            blockers.append(f"The {name} still reports activity: wait until it has stopped, then reset.")
            continue
        temp = row.get("lamp_temp_c")
        allowed_c = HOST_MAX_LAMP_TEMP_C - RESET_TEMP_HYSTERESIS_C
        if temp is not None and temp > allowed_c:
            blockers.append(f"The lamp is at {temp:.1f} °C: reset is allowed below {allowed_c:g} °C (the "
                            f"{HOST_MAX_LAMP_TEMP_C:g} °C limit minus {RESET_TEMP_HYSTERESIS_C:g} °C). Let it cool, "
                            "then reset.")
            continue
        trip = tripped.get(name)
        if trip is not None and trip.interlock == InterlockCause.CONTACT_LOST and not row.get("skin_contact", 1):
            blockers.append(f"The {name} still sees no skin contact: place it on the skin, then reset.")
            continue
        to_reset.append(name)
    if not blockers:
        for name in to_reset:
            reset_faults = getattr(devices[name], "reset_faults", None)
            if reset_faults is None:
                continue
            t_reset = monitor.clock()
            try:
                reset_faults()
            except Exception as exc:  # noqa: BLE001 - a refusal or a dead link: both are a cause that remains
                blockers.append(_device_reset_refusal(name, exc))
                continue
            if not _wait_fault_clear(monitor, name, t_reset):
                blockers.append(f"The {name} accepted the reset but its telemetry still shows a latched fault: "
                                "check the device, then reset again.")
    if blockers:
        _refused(monitor, who, blockers)
    cleared = monitor.reset(who, unless_seen_since=seen)
    if cleared is None:
        latched = ", ".join(sorted({t.interlock for t in monitor.tripped.values()})) or "one"
        _refused(monitor, who, [f"An interlock tripped or STOP was pressed after the reset was asked for (latched "
                                f"now: {latched}), so nothing was reset: check its cause, then reset again."])
    return cleared


def _refused(monitor: SafetyMonitor, who: str, blockers: list[str]) -> NoReturn:
    monitor.bus.publish_event(Event(monitor.clock(), "interlock_reset_refused", "info", "operator",
                                 "reset refused: " + " ".join(blockers), {"who": who, "causes": blockers}))
    raise ResetRefused(" ".join(blockers))


def _wait_block(monitor: SafetyMonitor, device: str, since: float, timeout_s: float = RESET_ANSWER_S) -> bool:
    """Wait until a block from `device` arrives after `since` (the host clock)."""
    return wait_seen(lambda: monitor.last_block_s(device) > since, timeout_s)


def _wait_fault_clear(monitor: SafetyMonitor, device: str, since: float, timeout_s: float = RESET_ANSWER_S) -> bool:
    """Wait until a block that arrived after `since` shows no latched fault bits."""
    return wait_seen(lambda: monitor.last_block_s(device) > since and not monitor.last_row(device).get("fault_bits"),
                     timeout_s)


def _device_reset_refusal(name: str, exc: Exception) -> str:
    """A sentence for a device that refused RESET (its reason names the fault whose cause persists)."""
    reason = getattr(exc, "reason", "")
    if "MOTOR_JAM" in reason:
        return (f"The {name} reports its motor still jammed: free the needle mechanism or fit a new cartridge, "
                "then reset.")
    if "LAMP_FAILURE" in reason:
        return f"The {name} reports a failed lamp: have the lamp replaced, then reset."
    if "OVER_TEMPERATURE" in reason:
        return f"The {name} reports its lamp still too hot: let it cool, then reset."
    if "WATCHDOG" in reason:
        return f"The {name} has not heard the workstation's heartbeat yet: wait a moment, then reset."
    if reason:
        return f"The {name} refused the reset: {reason.rstrip('.')}. Remove the cause, then reset."
    return f"The {name} could not be reset ({exc}): check that it is connected, then reset."
