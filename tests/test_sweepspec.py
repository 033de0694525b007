"""The sweep spec (the timer trigger's Message): valid specs round-trip, anything else is one
InvalidSweepSpec line. The Message is configuration, but it reaches the function as an
untrusted string, so it is fuzzed like a callback body."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_callback.reconcile.spec import (
    MAX_MESSAGE_BYTES,
    InvalidSweepSpec,
    JobSource,
    SweepSpec,
    WorkflowSource,
    parse_spec,
)
from conftest import scf_event

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BUCKET = "examplebucket-1250000000"
QUEUE = "p2242ab62c7c94486915508540933a2c6"
PIC_QUEUE = "p2911917386e148639319e13c285cc774"
WORKFLOW = "web6ac56c1ef54dbfa44d7f4103203be9"
ISSUE_SPEC = {"reconcile": {"lookback_minutes": 180, "sources": [
    {"bucket": BUCKET, "region": "ap-guangzhou", "queue": QUEUE, "tags": ["SmartCover", "Transcode"]},
    {"bucket": BUCKET, "region": "ap-guangzhou", "pic_queue": PIC_QUEUE},
    {"bucket": BUCKET, "region": "ap-guangzhou", "workflow": WORKFLOW}]}}


def _one_line(exc: InvalidSweepSpec) -> str:
    text = str(exc)
    assert text and "\n" not in text and "\r" not in text and len(text) <= 200, text
    return text


# ---------------------------------------------------------------- examples


def test_the_issues_spec_parses_into_typed_sources():
    spec = parse_spec(json.dumps(ISSUE_SPEC))
    assert spec.lookback_minutes == 180 and spec.page_size == 100 and spec.inbox
    media, pic, flow = spec.sources
    assert media == JobSource(BUCKET, "ap-guangzhou", QUEUE, ("SmartCover", "Transcode"))
    assert pic == JobSource(BUCKET, "ap-guangzhou", PIC_QUEUE, ("PicProcess",), pic=True)
    assert flow == WorkflowSource(BUCKET, "ap-guangzhou", WORKFLOW)
    assert [(s.source.kind, s.tag) for s in spec.streams] == [
        ("queue", "SmartCover"), ("queue", "Transcode"), ("pic_queue", "PicProcess"), ("workflow", None)]
    assert spec.buckets == ((BUCKET, "ap-guangzhou"),)
    with pytest.raises(AttributeError):
        spec.lookback_minutes = 1  # type: ignore[misc]


def test_digest_ignores_formatting_and_defaults_but_not_content():
    spec = parse_spec(json.dumps(ISSUE_SPEC))
    pretty = json.dumps(ISSUE_SPEC, indent=4, sort_keys=True)
    explicit = copy.deepcopy(ISSUE_SPEC)
    explicit["reconcile"].update(page_size=100, inbox=True, pad_minutes=60)
    assert parse_spec(pretty).digest == parse_spec(json.dumps(explicit)).digest == spec.digest
    other = copy.deepcopy(ISSUE_SPEC)
    other["reconcile"]["lookback_minutes"] = 181
    assert parse_spec(json.dumps(other)).digest != spec.digest
    assert len(spec.digest) == 16 and int(spec.digest, 16) >= 0


def test_the_docs_timer_message_is_refused_in_one_line():
    message = scf_event("timer-event-doc.json")["Message"]  # "user define msg body"
    with pytest.raises(InvalidSweepSpec) as refused:
        parse_spec(message)
    assert _one_line(refused.value).startswith("the sweep spec is not JSON")


def _mutated(**changes):
    spec = copy.deepcopy(ISSUE_SPEC)
    for path, value in changes.items():
        node = spec["reconcile"]
        *parents, leaf = path.split("__")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is KeyError:
            del node[int(leaf) if leaf.isdigit() else leaf]
        else:
            node[int(leaf) if leaf.isdigit() else leaf] = value
    return spec


BAD = {
    "placeholder queue": (_mutated(sources__0__queue="p…"), "sources[0].queue"),
    "no tags": (_mutated(sources__0__tags=KeyError), "sources[0].tags is required"),
    "empty tags": (_mutated(sources__0__tags=[]), "sources[0].tags"),
    "tag twice": (_mutated(sources__0__tags=["Transcode", "Transcode"]), "twice"),
    "bad tag": (_mutated(sources__0__tags=["Trans code"]), "not a job Tag"),
    "two kinds": (_mutated(sources__1__workflow=WORKFLOW), "exactly one of"),
    "no kind": (_mutated(sources__1__pic_queue=KeyError), "exactly one of"),
    "tags on a workflow": (_mutated(sources__2__tags=["Transcode"]), "unknown key 'tags'"),
    "bad bucket": (_mutated(sources__0__bucket="Example_Bucket"), "sources[0].bucket"),
    "no appid": (_mutated(sources__0__bucket="examplebucket"), "sources[0].bucket"),
    "bad region": (_mutated(sources__0__region="guangzhou"), "sources[0].region"),
    "typo": (_mutated(lookback=10), "unknown key 'lookback'"),
    "bool minutes": (_mutated(lookback_minutes=True), "lookback_minutes"),
    "zero lookback": (_mutated(lookback_minutes=0), "lookback_minutes"),
    "a year": (_mutated(lookback_minutes=525600), "lookback_minutes"),
    "settle too long": (_mutated(settle_minutes=180), "settle_minutes"),
    "page 101": (_mutated(page_size=101), "page_size"),
    "page 0": (_mutated(page_size=0), "page_size"),
    "inbox yes": (_mutated(inbox="yes"), "inbox"),
    "no sources": (_mutated(sources=[]), "sources"),
    "duplicate source": (_mutated(sources__2=ISSUE_SPEC["reconcile"]["sources"][0]), "twice"),
    "source is a string": (_mutated(sources__0="queue"), "sources[0] must be an object"),
    "reconcile is a list": ({"reconcile": []}, "reconcile must be an object"),
    "other top key": ({"reconcile": ISSUE_SPEC["reconcile"], "x": 1}, "unknown key 'x'"),
    "no reconcile": ({}, "reconcile"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_specs_name_the_field(name):
    spec, expected = BAD[name]
    with pytest.raises(InvalidSweepSpec) as refused:
        parse_spec(json.dumps(spec))
    assert expected in _one_line(refused.value)


def test_size_limit_is_the_timer_arguments():
    big = _mutated(sources__0__tags=[f"T{i}" for i in range(20)])
    padded = json.dumps(big) + " " * MAX_MESSAGE_BYTES
    with pytest.raises(InvalidSweepSpec) as refused:
        parse_spec(padded)
    assert "4096" in _one_line(refused.value)
    with pytest.raises(InvalidSweepSpec):
        parse_spec(123)  # type: ignore[arg-type]
    with pytest.raises(InvalidSweepSpec):
        parse_spec(b"\xff\xfe{")
    with pytest.raises(InvalidSweepSpec):
        parse_spec("[" * 5000)


# ---------------------------------------------------------------- properties

_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
names = st.builds(lambda a, b, c: a + b + c, st.sampled_from(_LOWER), st.text(_LOWER + "-", max_size=20),
                  st.sampled_from(_LOWER))
buckets = st.builds(lambda n, a: f"{n}-{a}", names, st.integers(1250000000, 1259999999))
regions = st.sampled_from(["ap-guangzhou", "ap-shanghai", "ap-beijing", "ap-chongqing", "na-siliconvalley",
                           "ap-shanghai-fsi"])
ids = st.builds(lambda p, h: p + h, st.sampled_from("pw"), st.text("0123456789abcdef", min_size=32, max_size=32))
tags = st.lists(st.builds(lambda a, b: a + b, st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                          st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", max_size=15)),
                min_size=1, max_size=4, unique=True)


@st.composite
def sources(draw):
    kind = draw(st.sampled_from(["queue", "pic_queue", "workflow"]))
    source = {"bucket": draw(buckets), "region": draw(regions), kind: draw(ids)}
    if kind == "queue" or (kind == "pic_queue" and draw(st.booleans())):
        source["tags"] = draw(tags)
    return source


@st.composite
def specs(draw):
    body = {"sources": draw(st.lists(sources(), min_size=1, max_size=6,
                                     unique_by=lambda s: (s["bucket"], s.get("queue"), s.get("pic_queue"),
                                                          s.get("workflow"))))}
    lookback = draw(st.integers(3, 7 * 24 * 60))
    if draw(st.booleans()):
        body["lookback_minutes"] = lookback
    else:
        lookback = 180
    for key, strategy in (("pad_minutes", st.integers(0, 600)), ("settle_minutes", st.integers(0, 2)),
                          ("page_size", st.integers(1, 100)), ("inbox", st.booleans()),
                          ("inbox_age_minutes", st.integers(0, 60))):
        if draw(st.booleans()):
            body[key] = draw(strategy)
    return {"reconcile": body}


@SETTINGS
@given(specs())
def test_valid_specs_round_trip(document):
    text = json.dumps(document)
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        with pytest.raises(InvalidSweepSpec):
            parse_spec(text)
        return
    spec = parse_spec(text)
    assert isinstance(spec, SweepSpec)
    assert parse_spec(json.dumps(spec.to_dict())) == spec
    assert parse_spec(spec.to_dict()) == spec  # an already decoded object reads the same
    assert len(spec.sources) == len(document["reconcile"]["sources"])
    assert all(1 <= len(s.tags) for s in spec.sources if isinstance(s, JobSource))
    assert len({s.label for s in spec.streams}) == len(spec.streams)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300), json_values.map(json.dumps)))
def test_arbitrary_messages_are_a_spec_or_one_line_error(message):
    try:
        spec = parse_spec(message)
    except InvalidSweepSpec as exc:
        _one_line(exc)
    else:
        assert isinstance(spec, SweepSpec)


@st.composite
def broken_specs(draw):
    """A valid spec with one node replaced by an arbitrary JSON value, or one key dropped or added."""
    document = draw(specs())
    body = document["reconcile"]
    source = body["sources"][draw(st.integers(0, len(body["sources"]) - 1))]
    target = draw(st.sampled_from([body, source]))
    key = draw(st.sampled_from(sorted(target)))
    action = draw(st.sampled_from(["replace", "drop", "add"]))
    if action == "replace":
        target[key] = draw(json_values)
    elif action == "drop":
        del target[key]
    else:
        target[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    return document


@SETTINGS
@given(broken_specs())
def test_mutated_specs_never_raise_anything_else(document):
    try:
        spec = parse_spec(json.dumps(document))
    except InvalidSweepSpec as exc:
        _one_line(exc)
    else:  # the mutation happened to keep it valid (an optional key dropped, a value redrawn valid)
        assert parse_spec(json.dumps(spec.to_dict())) == spec
