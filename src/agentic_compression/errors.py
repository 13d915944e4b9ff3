"""Exceptions with messages meant for users.

Every error a user can cause by what they typed is a :class:`UserInputError`: the CLI prints its one-line
message (the problem and the fix) and exits non-zero, without a traceback. Errors that come from the
hardware or a library (a method that has no kernel here) are :class:`MethodUnavailableError`; they are
recorded on the trial as a failure, never turned into a result.
"""


class AgenticCompressionError(Exception):
    """Base class of the package's own errors."""


class UserInputError(AgenticCompressionError):
    """Bad input from the user: a wrong model, recipe, parameter, path or flag.

    The message states the problem and how to fix it, on one line.
    """


class MethodUnavailableError(AgenticCompressionError):
    """A compression method cannot run on this hardware or with the installed libraries."""


class CompressionFailedError(AgenticCompressionError):
    """A compression step raised; the candidate is recorded as failed with this reason."""
