"""The one error of the recording package: a sentence naming the file and what is wrong with it."""

from workstation.errors import UserError


class RecordingError(UserError):
    """A recording cannot be written or read: unwritable folder, full disk, not a recording, newer format..."""
