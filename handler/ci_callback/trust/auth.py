"""Authentication, before anything is parsed or written.

CI signs nothing, so the callback URL carries a secret token (``?token=…``) that we
compare in constant time against ``CI_CALLBACK_TOKENS`` (several, for rotation).
With no token configured every callback is refused: secure by default. Which buckets
a callback may name is ``policy``'s business.
"""

from __future__ import annotations

from hmac import compare_digest
from typing import TYPE_CHECKING

from .. import log
from ..errors import HttpError
from ..settings import Settings

if TYPE_CHECKING:  # the edge's request type, for annotations only
    from ..edge.http import HttpRequest

TOKEN_PARAM = "token"
TOKEN_HEADER = "x-ci-callback-token"


def presented_token(request: HttpRequest) -> str | None:
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
