"""Exception types of the stations stage (callers branch on the type, never on message text).

Every message names the file, the field and what to do.
"""
from __future__ import annotations


class StationFileError(ValueError):
    """A station file cannot be read; the message names the file, the field and the fix."""


class HeightNotFoundError(StationFileError):
    """The file holds no records at the requested intake (sampling) height.

    ``heights``: the heights the file does hold (m), so that a caller looking for one inlet among
    several files can go on to the next file."""

    def __init__(self, message: str, heights=()):
        super().__init__(message)
        self.heights = [float(h) for h in heights]


class SpeciesMismatchError(StationFileError):
    """The file holds another species than the one asked for."""


class UnitError(StationFileError):
    """A mole-fraction unit this reader cannot interpret (not a mole fraction, or unreadable)."""


class FormatNotRecognisedError(StationFileError):
    """The content of a file matches none of the station formats this package reads."""
