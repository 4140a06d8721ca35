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


class WrongDevice(NotConnected):
    """The device that answered on the port is not what the driver drives (kind, model or protocol version).
    `identity` is what it answered (drivers.types.Identity), when its answer could be read."""

    def __init__(self, message: str, identity: object = None) -> None:
        super().__init__(message)
        self.identity = identity


class CommandRefused(DeviceError):
    def __init__(self, command: str, code: int, reason: str) -> None:
        self.command, self.code, self.reason = command, code, reason
        try:
            code_name = p.Refusal(code).name
        except ValueError:
            code_name = str(code)
        super().__init__(f"the device refused {command}: {reason} ({code_name})")


class CommandTimeout(DeviceError):
    pass
