"""Errors meant for people. Anything a user can cause raises UserError with a sentence that says what was wrong and
what to do; the command line and the window show that sentence, never a traceback."""


class UserError(Exception):
    """Bad input from a person (a file, a port, a value). The message is shown as is."""

    exit_code = 2


class AbortedByInterlock(Exception):
    """A session ended because an interlock tripped."""

    exit_code = 3
