"""Errors a user can cause, and the exit statuses the command-line contract promises."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the operation ran and failed (deploy rolled back, drift, a check failed)
EXIT_USAGE = 2  # bad usage or bad input


class UserError(Exception):
    """Bad input or usage: printed as one line, exit status 2, no traceback.

    The message must say what is wrong and where (file, host, container, key).
    """

    exit_code = EXIT_USAGE


class OperationFailed(Exception):
    """The operation ran and failed; its own output has already told the story."""

    exit_code = EXIT_FAILED
