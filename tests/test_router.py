"""Router: every matching key runs, most specific first; the fallback only when none matched."""

from __future__ import annotations

import json

import pytest

from ci_callback import parse_callback
from ci_callback.routing.router import ANY, Invocation, Route, Router


def job(tag="Transcode", state="Success", job_id="j1"):
    detail = {"JobId": job_id, "Code": "Success", "Message": ""}
    if tag is not None:
        detail["Tag"] = tag
    if state is not None:
        detail["State"] = state
    return parse_callback(json.dumps({"EventName": "TaskFinish", "JobsDetail": detail}))


def job_xml(tag="Snapshot", state="Failed"):
    body = (
        "<Response><EventName>TaskFinish</EventName><JobsDetail>"
        f"<JobId>jx</JobId><Tag>{tag}</Tag><State>{state}</State>"
        "</JobsDetail></Response>"
    )
    return parse_callback(body.encode(), "application/xml")


def workflow(state="Success"):
    return parse_callback(
        json.dumps({"EventName": "WorkflowFinish", "WorkflowExecution": {"RunId": "r1", "State": state}})
    )


def review_detail(event="ReviewImage", state="Success"):
    return parse_callback(
        json.dumps({"EventName": event, "JobsDetail": {"JobId": "s1", "State": state, "Result": 1}})
    )


def review_simple(event="ReviewVideo", code=0):
    return parse_callback(
        json.dumps({"code": code, "message": "success", "data": {"event": event, "trace_id": "t1", "result": 0}})
    )


def console_test():
    return parse_callback(
        json.dumps({"code": 0, "message": "Test request when setting callback url",
                    "data": {"url": "test_url", "result": 0, "trace_id": "test_trace_id"}})
    )


def named(name):
    """A distinct handler function with a readable __name__."""

    def handler(callback, inv):
        inv.record(name)

    handler.__name__ = name
    return handler


def names(routes):
    return [r.name for r in routes]


def run(router, callback):
    inv = Invocation()
    for route in router.resolve(callback):
        route.handler(callback, inv)
    return [a["action"] for a in inv.actions]


# ---------------------------------------------------------------- the callbacks themselves


def test_callback_builders_parse_as_expected():
    c = job()
    assert (c.kind, c.tag, c.state) == ("job", "Transcode", "Success")
    assert (workflow().kind, workflow().tag) == ("workflow", None)
    assert (review_detail().kind, review_detail().tag) == ("moderation", "ReviewImage")
    assert (review_simple().kind, review_simple().tag) == ("moderation", "ReviewVideo")
    assert console_test().is_test and console_test().tag is None


# ---------------------------------------------------------------- specificity


def test_specificity_order_tag_beats_state():
    r = Router()
    # Registered least specific first, to show order comes from the key, not registration.
    r.on_job()(named("kind"))
    r.on_job(state="Success")(named("state"))
    r.on_job("Transcode")(named("tag"))
    r.on_job("Transcode", "Success")(named("tag_state"))
    routes = r.resolve(job("Transcode", "Success"))
    assert names(routes) == ["tag_state", "tag", "state", "kind"]
    assert [route.key for route in routes] == [
        ("job", "Transcode", "Success"),
        ("job", "Transcode", ANY),
        ("job", ANY, "Success"),
        ("job", ANY, ANY),
    ]
    assert not any(route.fallback for route in routes)


def test_non_matching_keys_are_skipped():
    r = Router()
    r.on_job("Transcode", "Success")(named("tc_ok"))
    r.on_job("Transcode", "Failed")(named("tc_failed"))
    r.on_job("Snapshot")(named("snapshot"))
    r.on_job(state="Failed")(named("any_failed"))
    r.on_job()(named("any"))
    assert names(r.resolve(job("Transcode", "Failed"))) == ["tc_failed", "any_failed", "any"]
    assert names(r.resolve(job("Snapshot", "Success"))) == ["snapshot", "any"]
    assert names(r.resolve(job("Segment", "Cancel"))) == ["any"]
    assert names(r.resolve(job_xml("Snapshot", "Failed"))) == ["snapshot", "any_failed", "any"]


def test_tag_and_state_are_case_sensitive():
    r = Router()
    r.on_job("transcode")(named("lower"))
    r.fallback(named("fb"))
    assert names(r.resolve(job("Transcode"))) == ["fb"]


def test_several_handlers_on_one_key_run_in_registration_order():
    r = Router()
    for n in ("first", "second", "third"):
        r.on_job("Transcode", "Success")(named(n))
    r.on_job()(named("general"))
    assert run(r, job()) == ["first", "second", "third", "general"]


def test_same_handler_on_two_keys_runs_twice():
    r = Router()
    h = named("twice")
    r.on_job("Transcode")(h)
    r.on_job(state="Success")(h)
    assert run(r, job()) == ["twice", "twice"]


def test_decorator_returns_the_handler():
    r = Router()
    h = named("h")
    assert r.on_job("Transcode")(h) is h
    assert r.on_workflow()(h) is h
    assert r.on_moderation()(h) is h
    assert r.fallback(h) is h


def test_job_without_tag_or_state_matches_wildcards_only():
    r = Router()
    r.on_job("Transcode")(named("tag"))
    r.on_job(state="Success")(named("state"))
    r.on_job()(named("any"))
    assert names(r.resolve(job(tag=None, state=None))) == ["any"]


def test_empty_tag_or_state_registers_as_wildcard():
    r = Router()
    r.on("job", "", "")(named("blank"))
    assert names(r.resolve(job("Anything", "Whatever"))) == ["blank"]
    assert r.resolve(job())[0].key == ("job", ANY, ANY)


# ---------------------------------------------------------------- fallback


def test_fallback_only_when_nothing_matched():
    r = Router()
    r.on_job(state="Success")(named("ok"))
    r.fallback(named("fb1"))
    r.fallback(named("fb2"))
    routes = r.resolve(job(state="Success"))
    assert names(routes) == ["ok"]
    routes = r.resolve(job(state="Running"))
    assert names(routes) == ["fb1", "fb2"]
    assert all(route.fallback for route in routes)
    assert all(route.key == ("job", ANY, ANY) for route in routes)
    assert [route.key[0] for route in r.resolve(workflow())] == ["workflow", "workflow"]


def test_no_handlers_and_no_fallback_resolves_to_nothing():
    r = Router()
    assert r.resolve(job()) == []
    r.on_workflow()(named("wf"))
    assert r.resolve(job()) == []


def test_kinds_do_not_leak():
    r = Router()
    r.on_job()(named("job"))
    r.on_workflow()(named("workflow"))
    r.on_moderation()(named("moderation"))
    assert names(r.resolve(job())) == ["job"]
    assert names(r.resolve(workflow())) == ["workflow"]
    assert names(r.resolve(review_detail())) == ["moderation"]
    assert names(r.resolve(review_simple())) == ["moderation"]


# ---------------------------------------------------------------- registration


@pytest.mark.parametrize("kind", ["jobs", "Job", "task", "", "*", None])
def test_unknown_kind_rejected_at_registration(kind):
    r = Router()
    with pytest.raises(ValueError, match="unknown callback kind"):
        r.on(kind)  # raises before any handler is given
    assert r.resolve(job()) == []


def test_on_with_each_known_kind():
    r = Router()
    r.on("job", "Transcode", "Success")(named("j"))
    r.on("workflow", state="Failed")(named("w"))
    r.on("moderation", "ReviewImage")(named("m"))
    assert names(r.resolve(job())) == ["j"]
    assert names(r.resolve(workflow("Failed"))) == ["w"]
    assert names(r.resolve(review_detail())) == ["m"]


# ---------------------------------------------------------------- workflow and moderation keys


def test_workflow_tag_is_always_wildcard():
    r = Router()
    r.on_workflow()(named("any"))
    r.on_workflow(state="Success")(named("ok"))
    routes = r.resolve(workflow("Success"))
    assert names(routes) == ["ok", "any"]
    assert [route.key for route in routes] == [("workflow", ANY, "Success"), ("workflow", ANY, ANY)]
    assert names(r.resolve(workflow("Failed"))) == ["any"]


def test_workflow_registered_with_a_tag_is_rejected():
    # Workflows carry no Tag: a Tag key could never match, so registration refuses it.
    r = Router()
    with pytest.raises(ValueError, match="no Tag"):
        r.on("workflow", tag="Transcode")
    r.on("workflow")(named("any"))
    assert names(r.resolve(workflow())) == ["any"]


def test_moderation_keyed_by_event():
    r = Router()
    r.on_moderation("ReviewImage")(named("image"))
    r.on_moderation("ReviewVideo", state="Success")(named("video_ok"))
    r.on_moderation(state="Failed")(named("any_failed"))
    r.on_moderation()(named("any"))
    assert names(r.resolve(review_detail("ReviewImage"))) == ["image", "any"]
    assert names(r.resolve(review_simple("ReviewVideo"))) == ["video_ok", "any"]
    assert names(r.resolve(review_simple("ReviewVideo", code=1))) == ["any_failed", "any"]
    assert names(r.resolve(review_detail("ReviewText", "Failed"))) == ["any_failed", "any"]
    assert r.resolve(review_detail("ReviewImage"))[0].key == ("moderation", "ReviewImage", ANY)


def test_console_test_matches_only_wildcard_moderation():
    r = Router()
    r.on_moderation("ReviewImage")(named("image"))
    r.on_moderation()(named("any"))
    assert names(r.resolve(console_test())) == ["any"]


# ---------------------------------------------------------------- remove and copy


def test_remove_everywhere_including_fallback():
    r = Router()
    h, other = named("h"), named("other")
    r.on_job("Transcode")(h)
    r.on_job(state="Success")(h)
    r.on_job(state="Success")(h)
    r.on_job()(other)
    r.fallback(h)
    r.remove(h)
    assert names(r.resolve(job())) == ["other"]
    r.remove(other)
    assert r.resolve(job()) == []  # and h is gone from the fallback too


def test_remove_unknown_handler_is_a_noop():
    r = Router()
    r.on_job()(named("a"))
    r.remove(named("stranger"))
    assert names(r.resolve(job())) == ["a"]


def test_remove_then_fallback_takes_over():
    r = Router()
    h = named("h")
    r.on_job()(h)
    r.fallback(named("fb"))
    assert names(r.resolve(job())) == ["h"]
    r.remove(h)
    assert names(r.resolve(job())) == ["fb"]


def test_copy_is_isolated_both_ways():
    original = Router()
    shared = named("shared")
    original.on_job("Transcode")(shared)
    original.fallback(named("fb"))

    twin = original.copy()
    twin.on_job("Transcode")(named("twin_only"))
    twin.fallback(named("twin_fb"))
    twin.remove(shared)

    assert names(original.resolve(job())) == ["shared"]
    assert names(original.resolve(workflow())) == ["fb"]
    assert names(twin.resolve(job())) == ["twin_only"]
    assert names(twin.resolve(workflow())) == ["fb", "twin_fb"]

    original.on_job("Transcode")(named("late"))
    assert names(twin.resolve(job())) == ["twin_only"]


def test_copy_of_the_app_router_leaves_it_alone():
    from ci_callback import app

    before = names(app.router.resolve(job()))
    twin = app.router.copy()
    twin.on_job("Transcode")(named("mine"))
    for route in app.router.resolve(job()):
        twin.remove(route.handler)
    assert names(twin.resolve(job())) == ["mine"]
    assert names(app.router.resolve(job())) == before


# ---------------------------------------------------------------- Route and Invocation


def test_route_name_falls_back_to_repr():
    class Callable:
        def __call__(self, callback, inv):
            pass

        def __repr__(self):
            return "<callable>"

    r = Router()
    r.on_job()(Callable())
    assert names(r.resolve(job())) == ["<callable>"]
    assert Route(("job", ANY, ANY), named("x")).fallback is False


def test_invocation_records_actions_in_order():
    inv = Invocation(request_id="rid")
    inv.record("index", key="a")
    inv.record("tag", keys=["a", "b"], decision="tagged")
    assert inv.actions == [
        {"action": "index", "key": "a"},
        {"action": "tag", "keys": ["a", "b"], "decision": "tagged"},
    ]
    assert Invocation().actions == []  # no shared default list
