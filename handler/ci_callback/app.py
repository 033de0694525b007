"""The entry: wires edge → trust → pipeline and answers every invocation.

SCF event → HTTP edge → authenticate → (pipeline) decode → typed model → authorise
buckets → archive raw body → (verify with CI) → claim marker → router → actions →
notify → response.

``main_handler`` is what SCF calls. ``handle`` is the same with its collaborators
passed in, for tests, the CLI and the local server; ``replay`` feeds archived bodies
through the same path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from . import auth, budget, log, triggers
from .context import Invocation
from .errors import CiCallbackError, ContinuationFailed, HttpError, Misconfigured, RetryBatch
from .http import HttpRequest, HttpResponse, request_from_event
from .settings import Settings, get_settings

if TYPE_CHECKING:
    from .router import Router
    from .services import Services
    from .storage import CosStorage

# Lazy on purpose: a refused request (bad token, wrong method) never imports the parser,
# the models, the router or the COS machinery; `test_trust` and `test_import_budget` hold it.

_default_router: Router | None = None


def default_router() -> Router:
    """The router with the built-in handlers (``ci_callback.app.router``), built on first use."""
    global _default_router
    if _default_router is None:
        from . import handlers  # noqa: PLC0415
        from .router import Router  # noqa: PLC0415

        _default_router = handlers.register(Router())
    return _default_router


def reset_router() -> None:
    """Forget the default router and every handler registered on it; the next ``router`` is
    built afresh with the built-ins (``ci_callback_dev.testing`` calls it before each test)."""
    global _default_router
    _default_router = None


def __getattr__(name: str) -> Any:
    # ``from ci_callback.app import router`` keeps working; the router is built lazily.
    if name == "router":
        return default_router()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main_handler(event: Any, context: Any = None) -> dict[str, Any]:
    """SCF entry point (``index.main_handler``)."""
    return handle(event, context)


def handle(
    event: Any,
    context: Any = None,
    *,
    settings: Settings | None = None,
    router: Router | None = None,
    services: Services | None = None,
) -> dict[str, Any]:
    """One trigger event in, one answer out: ``TRIGGERS`` says who handles which kind."""
    started = time.monotonic()
    kind = triggers.classify(event)
    try:
        settings = settings or get_settings()
    except Misconfigured as exc:
        if kind == triggers.QUEUE:  # acknowledging would drop the batch: let SCF retry it
            raise RetryBatch(f"misconfigured: {exc.variable}") from None
        return _finish(_misconfigured(exc), Invocation(), started)
    log.set_level(settings.log_level)
    scf_context = context if isinstance(context, dict) else None
    inv = Invocation(settings=settings, attached=services, deadline=budget.deadline_of(context, started),
                     started=started, scf=dict(scf_context or {}))
    if scf_context and scf_context.get("request_id"):
        inv.request_id = str(scf_context["request_id"])
    return TRIGGERS[kind](event, context, inv, router, started)


def _http(event: Any, context: Any, inv: Invocation, router: Router | None, started: float) -> dict[str, Any]:
    limit, scf_context = inv.settings.max_body_bytes, context if isinstance(context, dict) else None
    return _answer(lambda: request_from_event(event, limit, scf_context), inv, router, started)


def _timer(event: Any, context: Any, inv: Invocation, router: Router | None, started: float) -> dict[str, Any]:
    from .reconcile import handle_timer  # noqa: PLC0415 - the sweep loads only for a timer

    inv.source = "reconcile"
    return handle_timer(event, inv, router or default_router())


def _queue(event: Any, context: Any, inv: Invocation, router: Router | None, started: float) -> dict[str, Any]:
    from .batch import handle_batch  # noqa: PLC0415 - the queue path loads only for a CMQ batch

    inv.source = "queue"
    return handle_batch(event, inv, router or default_router())


def _continue(event: Any, context: Any, inv: Invocation, router: Router | None, started: float) -> dict[str, Any]:
    """A continuation invocation (async, from this function itself). A transient failure is
    raised, so SCF retries the invocation (tencent-facts.md, "Async retries")."""
    inv.source = "continuation"
    inv.fields.update(request_id=inv.request_id, source="continuation")
    pointer = event["ci_callback"]["continuation"]
    if isinstance(pointer, dict) and pointer.get("for") == "sweep":  # a sweep that ran out of time
        from .reconcile import continue_sweep  # noqa: PLC0415

        return continue_sweep(pointer, inv, router or default_router())
    try:
        from .pipeline import continue_chain  # noqa: PLC0415

        response = continue_chain(event, inv)
    except HttpError as exc:
        response = _refused(exc)
    except CiCallbackError as exc:  # storage or SCF failed before any work: retry
        log.error("continuation failed; SCF retries it", error=str(exc), **inv.fields)
        response = HttpResponse.error(503, f"temporarily unavailable: {str(exc)[:120]}")
    except Exception as exc:  # noqa: BLE001 - a bug: logged, and raised below like any failure
        response = _bug(exc, inv, "the continuation")
    answer = _finish(response, inv, started)
    if response.status >= 500:
        raise ContinuationFailed(str(response.payload.get("reason") or "continuation failed"))
    return answer


# Which entry handles which trigger (``triggers.classify``). A new trigger is one line here.
TRIGGERS: dict[str, Callable[[Any, Any, Invocation, Router | None, float], dict[str, Any]]] = {
    triggers.HTTP: _http,
    triggers.TIMER: _timer,
    triggers.QUEUE: _queue,
    triggers.CONTINUATION: _continue,
}


def _answer(read_request: Callable[[], HttpRequest], inv: Invocation, router: Router | None,
            started: float) -> dict[str, Any]:
    """Read the request, check its token, run the pipeline; every outcome becomes a response."""
    try:
        request = read_request()
        inv.request_id = request.request_id
        inv.fields["request_id"] = request.request_id
        auth.authenticate(request, inv.settings)  # nothing is parsed, or even imported, before this passes
        from .pipeline import process  # noqa: PLC0415 - after the token check, see above

        response = process(request, inv, router or default_router())
    except HttpError as exc:
        response = _refused(exc)
    except Exception as exc:  # noqa: BLE001 - a bug turns into a 500, never a crash
        response = _bug(exc, inv, "the callback")
    return _finish(response, inv, started)


def _bug(exc: Exception, inv: Invocation, what: str) -> HttpResponse:
    """The one way a bug is answered: logged with its trace, then a 500."""
    log.unhandled(exc, **inv.fields)
    return HttpResponse.error(500, f"internal error; {what} was not processed")


def _refused(exc: HttpError) -> HttpResponse:
    headers = {"Allow": "POST"} if exc.status == 405 else {}
    return HttpResponse(exc.status, {"ok": False, "status": "rejected", "reason": exc.reason}, headers)


def _misconfigured(exc: Misconfigured) -> HttpResponse:
    # The variable's name only: its value may be a secret.
    log.error("misconfigured: the function cannot run until this setting is fixed", variable=exc.variable,
              problem=exc.why)
    return HttpResponse(503, {"ok": False, "status": "misconfigured", "reason": f"misconfigured: {exc.variable}"})


def _finish(response: HttpResponse, inv: Invocation, started: float) -> dict[str, Any]:
    inv.fields.setdefault("outcome", response.payload.get("status"))
    log.info(
        "callback",
        status=response.status,
        reason=response.payload.get("reason"),
        duration_ms=round((time.monotonic() - started) * 1000, 2),
        **inv.fields,
    )
    return response.to_integrated()


# ---------------------------------------------------------------- replay (``ci-callback replay``)


@dataclass
class ReplayResult:
    key: str
    status: int
    outcome: str
    reason: str


def replay(storage: CosStorage, bucket: str, settings: Settings, selected: list[str], force: bool = False,
           services: Services | None = None, router: Router | None = None) -> list[ReplayResult]:
    """Feed archived callbacks through the pipeline again, as CI would have sent them."""
    from .replay import archived_request  # noqa: PLC0415 - the CLI's path: keeps the models out of a cold start

    run_settings = settings
    if force:  # ignore processed markers: re-run actions even for callbacks marked done
        run_settings = settings.replace(actions=frozenset(a for a in settings.actions if a != "dedupe"))
    token = settings.tokens[0] if settings.tokens else None
    results = []
    for key in selected:
        document = storage.get_json(bucket, key)
        if document is None:
            results.append(ReplayResult(key, 0, "missing", "archive object not found or not JSON"))
            continue
        started = time.monotonic()
        log.set_level(run_settings.log_level)
        inv = Invocation(settings=run_settings, attached=services, source="replay")
        response = _answer(partial(archived_request, document, token, f"replay:{key}"), inv, router, started)
        payload = json.loads(response["body"])
        results.append(ReplayResult(key, response["statusCode"], payload.get("status", ""), payload.get("reason", "")))
    return results
