"""Route a parsed callback to its handlers by kind, Tag and state.

A tiny ``on()`` registry in the spirit of octokit/webhooks: every handler whose key
matches runs, most specific first; the fallback runs only when none matched.
Keys are ``(kind, tag, state)`` with ``"*"`` as the wildcard. For workflows the tag
is always ``"*"``; for moderation it is the event (``ReviewImage`` …).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ..context import Invocation
from ..model.kinds import JOB, MODERATION, WORKFLOW

if TYPE_CHECKING:  # annotations only: the models load with the first callback
    from ..model.models import Callback, JobCallback, ModerationCallback, WorkflowCallback

ANY = "*"
KINDS = (JOB, WORKFLOW, MODERATION)
Key = tuple[str, str, str]
Handler = Callable[["Callback", Invocation], Any]
# Each registration hands back the function it was given, typed as it was written: a
# handler registered with on_job may take a JobCallback, and so on.
AnyHandler = TypeVar("AnyHandler", bound=Callable[..., Any])
JobHandler = TypeVar("JobHandler", bound="Callable[[JobCallback, Invocation], Any]")
WorkflowHandler = TypeVar("WorkflowHandler", bound="Callable[[WorkflowCallback, Invocation], Any]")
ModerationHandler = TypeVar("ModerationHandler", bound="Callable[[ModerationCallback, Invocation], Any]")
FallbackHandler = TypeVar("FallbackHandler", bound="Callable[[Callback, Invocation], Any]")


@dataclass(frozen=True)
class Route:
    key: Key
    handler: Handler
    fallback: bool = False

    @property
    def name(self) -> str:
        return getattr(self.handler, "__name__", repr(self.handler))


def _specificity(key: Key) -> int:
    _, tag, state = key
    return (2 if tag != ANY else 0) + (1 if state != ANY else 0)


class Router:
    def __init__(self) -> None:
        self._handlers: dict[Key, list[Handler]] = {}
        self._fallback: list[Handler] = []

    def on(self, kind: str, tag: str = ANY, state: str = ANY) -> Callable[[AnyHandler], AnyHandler]:
        """Register ``handler(callback, invocation)`` for a kind, optionally a Tag and a state."""
        if kind not in KINDS:
            raise ValueError(f"unknown callback kind {kind!r}; expected one of {', '.join(KINDS)}")
        if kind == WORKFLOW and (tag or ANY) != ANY:
            raise ValueError("workflow callbacks have no Tag; register with on_workflow(state=…)")

        def register(handler: AnyHandler) -> AnyHandler:
            self._handlers.setdefault((kind, tag or ANY, state or ANY), []).append(cast(Handler, handler))
            return handler

        return register

    def on_job(self, tag: str = ANY, state: str = ANY) -> Callable[[JobHandler], JobHandler]:
        return self.on(JOB, tag, state)

    def on_workflow(self, state: str = ANY) -> Callable[[WorkflowHandler], WorkflowHandler]:
        return self.on(WORKFLOW, ANY, state)

    def on_moderation(self, event: str = ANY, state: str = ANY) -> Callable[[ModerationHandler], ModerationHandler]:
        return self.on(MODERATION, event, state)

    def fallback(self, handler: FallbackHandler) -> FallbackHandler:
        """Register a handler for callbacks nothing else matched."""
        self._fallback.append(handler)
        return handler

    def remove(self, handler: Callable[..., Any]) -> None:
        """Unregister a handler everywhere (to replace a built-in one)."""
        for handlers in self._handlers.values():
            while handler in handlers:
                handlers.remove(handler)
        while handler in self._fallback:
            self._fallback.remove(handler)

    def resolve(self, callback: Callback) -> list[Route]:
        """Every matching handler, most specific key first; else the fallback."""
        kind = callback.kind
        tag = (callback.tag or ANY) if kind != WORKFLOW else ANY
        state = callback.state or ANY
        keys = {(kind, t, s) for t in (tag, ANY) for s in (state, ANY)}
        matched = sorted((k for k in keys if k in self._handlers), key=_specificity, reverse=True)
        routes = [Route(key, handler) for key in matched for handler in self._handlers[key]]
        if routes:
            return routes
        return [Route((kind, ANY, ANY), handler, fallback=True) for handler in self._fallback]

    def copy(self) -> Router:
        twin = Router()
        twin._handlers = {key: list(handlers) for key, handlers in self._handlers.items()}
        twin._fallback = list(self._fallback)
        return twin
