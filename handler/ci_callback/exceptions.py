"""Exceptions of the callback core. Each carries a one-line, client-safe reason."""

from __future__ import annotations


class CiCallbackError(Exception):
    """Base class for every error this package raises on purpose."""


class InvalidCallback(CiCallbackError, ValueError):
    """The body is not a well-formed Cloud Infinite callback.

    ``str(exc)`` is a single line that is safe to send back to the caller.
    """

    def __init__(self, reason: str) -> None:
        # Reasons may quote untrusted input: keep them to one short line.
        line = " ".join(str(reason).split())
        super().__init__(line[:200])
