"""Authentication and authorisation, before anything is parsed or written.

CI signs nothing, so the callback URL carries a secret token (``?token=…``) that we
compare in constant time against ``CI_CALLBACK_TOKENS`` (several, for rotation).
With no token configured every callback is refused: secure by default.
"""

from __future__ import annotations

try:  # the C function hmac.compare_digest is; importing hmac itself loads OpenSSL (~2.5 ms)
    from _operator import _compare_digest as compare_digest
except ImportError:  # pragma: no cover - other interpreters
    from hmac import compare_digest

TYPE_CHECKING = False

from . import log
from .http import HttpError, HttpRequest
from .settings import Settings

if TYPE_CHECKING:  # pragma: no cover - annotations only: refusing a token needs no models
    from typing import Iterable, Optional

    from .models import Callback

TOKEN_PARAM = "token"
TOKEN_HEADER = "x-ci-callback-token"


def presented_token(request: HttpRequest) -> Optional[str]:
    return request.query.get(TOKEN_PARAM) or request.header(TOKEN_HEADER)


def authenticate(request: HttpRequest, settings: Settings) -> None:
    """Raise HttpError 401/403 unless the request carries an accepted token."""
    if not settings.tokens:
        log.error("refusing callbacks: CI_CALLBACK_TOKENS is not configured", request_id=request.request_id)
        raise HttpError(403, "callback endpoint has no token configured")
    token = presented_token(request)
    if not token:
        raise HttpError(401, "missing token")
    candidate = token.encode("utf-8", "surrogatepass")
    matched = False
    for accepted in settings.tokens:  # compare against all: no early exit to time
        matched |= compare_digest(candidate, accepted.encode("utf-8"))
    if not matched:
        raise HttpError(403, "wrong token")


def named_buckets(callback: Callback) -> Iterable[str]:
    from .models import JobCallback  # noqa: PLC0415 - loaded by the parse that came first

    if callback.input.bucket:
        yield callback.input.bucket
    if isinstance(callback, JobCallback):
        for output in callback.outputs:
            if output.bucket:
                yield output.bucket


def authorize(callback: Callback, settings: Settings) -> None:
    """Raise HttpError 403 when the callback names a bucket outside the allow-list."""
    if not settings.allowed_buckets:
        return
    for bucket in named_buckets(callback):
        if bucket not in settings.allowed_buckets:
            raise HttpError(403, f"bucket {bucket[:63]} is not allowed")
