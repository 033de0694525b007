"""The pipeline, top to bottom:

SCF event → HTTP edge → authenticate → decode → typed model → authorise buckets →
archive raw body → (verify with CI) → claim marker → router → actions → notify →
response.

``main_handler`` is what SCF calls. ``handle`` is the same with its collaborators
passed in, for tests, the CLI and the local server.
"""

from __future__ import annotations

import time

from . import auth, log
from .http import HttpError, HttpResponse, request_from_event
from .settings import get_settings

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from typing import Any, Dict, List, Mapping, Optional

    from .http import HttpRequest
    from .models import Callback
    from .router import Invocation, Route, Router
    from .settings import Settings

# A cold start imports only what refusing a request needs (edge, token check, settings,
# log) and nothing from typing or dataclasses; the router, parser and models load after
# the token passed, the COS machinery (pipeline, storage, SDK) only for a real callback.

_default_router = None


def default_router() -> "Router":
    """The router with the built-in handlers (``ci_callback.app.router``), built on first use."""
    global _default_router
    if _default_router is None:
        from . import handlers  # noqa: PLC0415
        from .router import Router  # noqa: PLC0415

        _default_router = handlers.register(Router())
    return _default_router


def __getattr__(name: str) -> "Any":
    # ``from ci_callback.app import router`` keeps working; the router is built lazily.
    if name == "router":
        return default_router()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main_handler(event: Any, context: Any = None) -> Dict[str, Any]:
    """SCF entry point (``index.main_handler``)."""
    return handle(event, context)


def _deadline(context: Any, started: float) -> Optional[float]:
    limit = context.get("time_limit_in_ms") if isinstance(context, dict) else None
    if isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit > 0:
        # Keep a margin to answer before SCF kills us.
        return started + max(limit / 1000.0 - 0.5, limit / 2000.0)
    return None


def handle(
    event: Any,
    context: Any = None,
    *,
    settings: Optional[Settings] = None,
    router: Optional[Router] = None,
    services: Any = None,
) -> Dict[str, Any]:
    started = time.monotonic()
    settings = settings or get_settings()
    log.set_level(settings.log_level)
    fields: Dict[str, Any] = {}
    try:
        request = request_from_event(event, settings.max_body_bytes, context if isinstance(context, dict) else None)
        fields["request_id"] = request.request_id
        auth.authenticate(request, settings)  # nothing is parsed, or even imported, before this passes
        from .router import Invocation  # noqa: PLC0415

        inv = Invocation(request.request_id, settings, services, _deadline(context, started))
        response = _process(request, inv, router or default_router(), fields)
    except HttpError as exc:
        headers = {"Allow": "POST"} if exc.status == 405 else {}
        response = HttpResponse(exc.status, {"ok": False, "status": "rejected", "reason": exc.reason}, headers)
    except Exception as exc:  # noqa: BLE001 - the one place a bug turns into a 500, never a crash
        import traceback  # noqa: PLC0415 - only bugs pay for it

        log.error("unhandled error", error_type=type(exc).__name__, trace=traceback.format_exc(limit=8), **fields)
        response = HttpResponse.error(500, "internal error; the callback was not processed")
    fields.setdefault("outcome", response.payload.get("status"))
    log.info(
        "callback",
        status=response.status,
        reason=response.payload.get("reason"),
        duration_ms=round((time.monotonic() - started) * 1000, 2),
        **fields,
    )
    return response.to_integrated()


def _process(request: HttpRequest, inv: Invocation, router: Router, fields: Dict[str, Any]) -> HttpResponse:
    settings = inv.settings
    from .exceptions import InvalidCallback  # noqa: PLC0415 - after the token check, see above
    from .parse import parse_callback  # noqa: PLC0415

    try:
        callback = parse_callback(request.body, request.content_type)
    except InvalidCallback as exc:
        return HttpResponse.error(400, str(exc))
    fields.update(_describe(callback))
    auth.authorize(callback, settings)
    if getattr(callback, "is_test", False):
        return _dispatch(callback, inv, router, fields)  # console test: no storage at all

    from .pipeline import run_durably  # noqa: PLC0415 - storage machinery, only for real callbacks

    return run_durably(request, callback, inv, router, fields)


def _dispatch(callback: Callback, inv: Invocation, router: Router, fields: Dict[str, Any]) -> HttpResponse:
    """Run every matching handler and describe the outcome."""
    routes = router.resolve(callback)
    for route in routes:
        route.handler(callback, inv)
    fields["actions"] = [a["action"] for a in inv.actions]
    status = _outcome(callback, routes)
    return respond(200, status, callback, routes=routes, actions=inv.actions)


def respond(status_code: int, status: str, callback: Callback, reason: Optional[str] = None,
            routes: Optional[List[Route]] = None, actions: Optional[list] = None) -> HttpResponse:
    payload: Dict[str, Any] = {"ok": status_code < 400, "status": status, "reason": reason or _reason(status),
                               **_describe(callback)}
    if routes is not None:
        payload["handlers"] = [r.name for r in routes]
    if actions is not None:
        payload["actions"] = actions
    return HttpResponse(status_code, payload)


def _describe(callback: Callback) -> Dict[str, Any]:
    return {"kind": callback.kind, "id": callback.id, "tag": callback.tag, "state": callback.state}


def _outcome(callback: Callback, routes: List[Route]) -> str:
    if getattr(callback, "is_test", False):
        return "test"
    if all(r.fallback for r in routes):
        return "ignored"
    return "processed"


def _reason(status: str) -> str:
    return {
        "processed": "callback processed",
        "ignored": "valid callback, nothing to do",
        "test": "console test request acknowledged",
        "duplicate": "already processed",
    }.get(status, status)
