"""Every error this package raises on purpose, in one hierarchy.

Each carries a one-line, client-safe message. ``transient`` says whether a retry
(CI's or ours) can help: the pipeline answers 503 for transient failures and logs
permanent ones as errors.
"""

from __future__ import annotations


class CiCallbackError(Exception):
    """Base class for every error this package raises on purpose."""

    transient: bool = False

    def __init__(self, message: str = "", *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient


class InvalidCallback(CiCallbackError, ValueError):
    """The body is not a well-formed Cloud Infinite callback.

    ``str(exc)`` is a single line that is safe to send back to the caller.
    """

    def __init__(self, reason: str) -> None:
        # Reasons may quote untrusted input: keep them to one short line.
        line = " ".join(str(reason).split())
        super().__init__(line[:200])


class HttpError(CiCallbackError):
    """A request the edge answers itself, with a status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Misconfigured(CiCallbackError):
    """A setting's value does not parse. Names the variable, never its value."""

    def __init__(self, variable: str, why: str) -> None:
        super().__init__(f"{variable}: {why}")
        self.variable = variable
        self.why = why


class StorageError(CiCallbackError):
    """A COS call failed."""

    transient = True

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 transient: bool = True) -> None:
        super().__init__(message, transient=transient)
        self.status = status
        self.code = code


class OutOfTime(StorageError):
    """A COS request was not sent: it could not have ended before the invocation's deadline."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="OutOfTime", transient=True)


# StorageError.code for a request the COS SDK refused before any I/O (its own validation):
# permanent, and answered 4xx, never a 503 that asks for a retry which cannot help.
REFUSED_BY_SDK = "RefusedBySDK"


class NotFound(StorageError):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=404, code="NoSuchKey", transient=False)


class AlreadyExists(StorageError):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=409, code="FileAlreadyExists", transient=False)


class NotifyError(CiCallbackError):
    """Invoking the downstream SCF function failed."""

    transient = True

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message, transient=transient)


class ContinuationFailed(CiCallbackError):
    """A continuation invocation failed transiently; raised so SCF retries it."""

    transient = True


class VerificationFailed(CiCallbackError):
    """CI's record does not match the callback (or has no such job)."""


class ActionSkipped(CiCallbackError):
    """An action that cannot apply to this callback (no bucket, bucket not allowed…)."""


class InvalidSweepSpec(CiCallbackError, ValueError):
    """The timer's Message is not a usable sweep spec. ``str(exc)`` is one short line."""

    def __init__(self, reason: str) -> None:
        super().__init__(" ".join(str(reason).split())[:200])


class RetryBatch(CiCallbackError):
    """Some records of a queue batch failed transiently: raised after the others were
    processed, so SCF's async retry redelivers the batch (done records come back as
    cheap duplicates)."""

    transient = True
