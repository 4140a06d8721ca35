"""Errors meant for people. Anything a user can cause raises UserError with a sentence that says what was wrong and
what to do; the command line and the window show that sentence, never a traceback."""

import logging

from drivers.errors import UserError  # noqa: F401 - defined with the drivers (which import nothing from here)


class AbortedByInterlock(Exception):
    """A session ended because an interlock tripped."""

    exit_code = 3


class Terminated(SystemExit):
    """Raised by the SIGTERM and SIGHUP handler of a headless run (workstation.cli_session): code 128 + the signal."""


def signal_behind(exc: BaseException) -> SystemExit | KeyboardInterrupt | None:
    """The exception a signal raised (a `Terminated`, or Ctrl+C's KeyboardInterrupt) when `exc` is it or when a
    library's own cleanup replaced it while it was on its way out: `exc`'s chain of exceptions it was raised while
    handling. None when no signal is behind `exc`.

    A signal's exception is raised at whatever line the main thread was running, inside SQLAlchemy, h5py or pyserial
    too, and their `finally` blocks may raise another one in its place (SQLAlchemy's commit asserting its transaction
    ended: a SIGTERM while planning ended "an internal error", exit 1, in a loaded run of the tenth session)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, (Terminated, KeyboardInterrupt)):
            if current is not exc:  # not a defect of ours, but kept for whoever reads the log
                logging.getLogger(__name__).warning("%s, and a library raised this while cleaning up after it",
                                                    type(current).__name__, exc_info=exc)
            return current
        seen.add(id(current))
        current = current.__context__
    return None
