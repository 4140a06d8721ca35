"""What a driver raises to its callers: every message is a sentence that says what went wrong and what to do."""

from __future__ import annotations

from drivers import protocol as p


class UserError(Exception):
    """Bad input from a person (a file, a port, a value). The message is shown as is; the command line and the
    window show that sentence, never a traceback. Defined here so the drivers' own tools (the emulators' command)
    need nothing from the application; `workstation.errors` re-exports it."""

    exit_code = 2


class DeviceError(Exception):
    """A device could not do what was asked; the message says why."""


class NotConnected(DeviceError):
    pass


class StartInhibited(DeviceError):
    """START or ARM on was refused before it was written: an interlock is latched or the session was paused or
    stopped (drivers.link.SerialLink.inhibit_starts). Nothing reached the device."""


class WrongDevice(NotConnected):
    """The device that answered on the port is not what the driver drives (kind, model or protocol version).
    `identity` is what it answered (drivers.types.Identity), when its answer could be read."""

    def __init__(self, message: str, identity: object = None) -> None:
        super().__init__(message)
        self.identity = identity


class CommandRefused(DeviceError):
    """A REFUSE: `reason` is the device's own words (cleaned, drivers.protocol.text), the message says the code in
    words (drivers.protocol.refusal_words), never its name."""

    def __init__(self, command: str, code: int, reason: str) -> None:
        self.command, self.code, self.reason = command, code, reason
        words = p.refusal_words(code)
        super().__init__(f"the device refused {command}: {reason} ({words})" if reason
                         else f"the device refused {command}: {words}")


class CommandTimeout(DeviceError):
    pass
