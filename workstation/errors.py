"""Errors meant for people. Anything a user can cause raises UserError with a sentence that says what was wrong and
what to do; the command line and the window show that sentence, never a traceback."""


from drivers.errors import UserError  # noqa: F401 - defined with the drivers (which import nothing from here)


class AbortedByInterlock(Exception):
    """A session ended because an interlock tripped."""

    exit_code = 3
