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

from . import budget, log
from .context import Invocation
from .edge import triggers
from .edge.http import HttpRequest, HttpResponse, request_from_event
from .errors import ContinuationFailed, Misconfigured, RetryBatch
from .runner import finish, run_item
from .settings import Settings, get_settings
from .trust import auth

if TYPE_CHECKING:
    from .adapters.cos import CosStorage
    from .adapters.services import Services
    from .routing.router import Router

    router: Router  # ``from ci_callback.app import router`` is a Router to mypy; built by __getattr__

# Lazy on purpose: a refused request (bad token, wrong method) never imports the parser,
# the models, the router or the COS machinery; `test_trust` and `test_import_budget` hold it.

_default_router: Router | None = None


def default_router() -> Router:
    """The router with the built-in handlers (``ci_callback.app.router``), built on first use."""
    global _default_router
    if _default_router is None:
        from .routing import handlers
        from .routing.router import Router

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
        return _answer_with(_misconfigured(exc), Invocation(), started)
    log.set_level(settings.log_level)
    scf_context = context if isinstance(context, dict) else None
    inv = Invocation(settings=settings, attached=services, deadline=budget.deadline_of(context, started),
                     started=started, scf=dict(scf_context or {}))
    if scf_context and scf_context.get("request_id"):
        inv.request_id = str(scf_context["request_id"])
    return TRIGGERS[kind](event, context, inv, router, started)


def _http(event: Any, context: Any, inv: Invocation, router: Router | None, started: float) -> dict[str, Any]:
    limit, scf_context = inv.settings.max_body_bytes, context if isinstance(context, dict) else None
    return _answer(lambda: request_from_event(event, limit, scf_context), inv, router)


def _timer(event: Any, context: Any, inv: Invocation, router: Router | None, started: float) -> dict[str, Any]:
    from .reconcile.run import handle_timer  # the sweep loads only for a timer

    inv.source = "reconcile"
    return handle_timer(event, inv, router or default_router())


def _queue(event: Any, context: Any, inv: Invocation, router: Router | None, started: float) -> dict[str, Any]:
    from .queue.batch import handle_batch  # the queue path loads only for a CMQ batch

    inv.source = "queue"
    return handle_batch(event, inv, router or default_router())


def _continue(event: Any, context: Any, inv: Invocation, router: Router | None, started: float) -> dict[str, Any]:
    """A continuation invocation (async, from this function itself): ``CONTINUATIONS`` by the
    pointer's kind. An unknown kind is refused in one line, never guessed."""
    inv.source = "continuation"
    inv.fields.update(request_id=inv.request_id, source="continuation")
    pointer = event["ci_callback"]["continuation"]
    kind = str(pointer.get("for") or "job") if isinstance(pointer, dict) else "job"
    resume = CONTINUATIONS.get(kind)
    if resume is None:
        return _answer_with(HttpResponse.error(400, f"unknown continuation kind {kind[:32]!r}"), inv, started)
    return resume(event, inv, router or default_router())


def _continue_job(event: Any, inv: Invocation, router: Router) -> dict[str, Any]:
    """The next step of a job's chain. A failure is raised, so SCF's async retry runs the
    same event again (docs/tencent-facts.md, "SCF async retries")."""
    from .pipeline import continue_chain

    response = run_item(inv, lambda: continue_chain(event, inv), what="the continuation")
    if response.status >= 500:
        raise ContinuationFailed(str(response.payload.get("reason") or "continuation failed"))
    return response.to_integrated()


def _continue_sweep(event: Any, inv: Invocation, router: Router) -> dict[str, Any]:
    """A sweep that ran out of time goes on from its saved cursor."""
    from .reconcile.run import continue_sweep

    return continue_sweep(event["ci_callback"]["continuation"], inv, router)


# Which continuation pointer ({"for": kind}) resumes what. A new kind of chain is one line here.
CONTINUATIONS: dict[str, Callable[[Any, Invocation, Router], dict[str, Any]]] = {
    "job": _continue_job,
    "sweep": _continue_sweep,
}


# Which entry handles which trigger (``triggers.classify``). A new trigger is one line here.
TRIGGERS: dict[str, Callable[[Any, Any, Invocation, Router | None, float], dict[str, Any]]] = {
    triggers.HTTP: _http,
    triggers.TIMER: _timer,
    triggers.QUEUE: _queue,
    triggers.CONTINUATION: _continue,
}


def _answer(read_request: Callable[[], HttpRequest], inv: Invocation, router: Router | None) -> dict[str, Any]:
    """Read the request, check its token, run the pipeline: one item for the runner."""

    def work() -> HttpResponse:
        request = read_request()
        inv.request_id = request.request_id
        inv.fields["request_id"] = request.request_id
        auth.authenticate(request, inv.settings)  # nothing is parsed, or even imported, before this passes
        from .pipeline import process  # after the token check, see above

        return process(request, inv, router or default_router())

    return run_item(inv, work).to_integrated()


def _answer_with(response: HttpResponse, inv: Invocation, started: float) -> dict[str, Any]:
    finish(response, inv, started)
    return response.to_integrated()


def _misconfigured(exc: Misconfigured) -> HttpResponse:
    # The variable's name only: its value may be a secret.
    log.error("misconfigured: the function cannot run until this setting is fixed", variable=exc.variable,
              problem=exc.why)
    return HttpResponse(503, {"ok": False, "status": "misconfigured", "reason": f"misconfigured: {exc.variable}"})


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
    from .durable.replay import archived_request  # the CLI's path: keeps the models out of a cold start

    run_settings = settings
    if force:  # ignore processed markers: re-run actions even for callbacks marked done
        run_settings = settings.replace(actions=frozenset(a for a in settings.actions if a != "dedupe"))
    token = settings.tokens[0] if settings.tokens else None
    log.set_level(run_settings.log_level)
    parent = Invocation(settings=run_settings, attached=services, source="replay")
    results = []
    for key in selected:
        document = storage.get_json(bucket, key)
        if document is None:
            results.append(ReplayResult(key, 0, "missing", "archive object not found or not JSON"))
            continue
        item = parent.child(f"replay:{key}", "replay")
        response = _answer(partial(archived_request, document, token, f"replay:{key}"), item, router)
        payload = json.loads(response["body"])
        results.append(ReplayResult(key, response["statusCode"], payload.get("status", ""), payload.get("reason", "")))
    return results
