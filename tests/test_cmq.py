"""The queue edge (ci_callback.cmq) and the trigger table (ci_callback.triggers): every CMQ batch
becomes one record per message, envelopes come off, and nothing in an untrusted batch raises."""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_callback.edge import triggers
from ci_callback.errors import InvalidCallback
from ci_callback.model.parse import parse_callback
from ci_callback.queue import records as cmq
from conftest import EVENTS, scf_event

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BATCH = json.loads((EVENTS / "cmq-topic-batch.json").read_text(encoding="utf-8"))
XML_BODY = BATCH["Records"][0]["CMQ"]["msgBody"].encode()
JSON_BODY = BATCH["Records"][1]["CMQ"]["msgBody"].encode()
SIMPLE_REVIEW = json.dumps({"code": 0, "message": "success", "data": {"event": "ReviewImage", "trace_id": "t1",
                                                                     "url": "https://b-1250000000.cos.ap-guangzhou.myqcloud.com/a.jpg",
                                                                     "result": 0}}).encode()


def _event(*bodies, **extra):
    return {"Records": [{"CMQ": {"type": "topic", "topicName": "t", "msgId": str(i), "msgBody": b, **extra}}
                        for i, b in enumerate(bodies)]}


def test_the_sample_batch_reads_as_three_records():
    found = cmq.records(BATCH, 1 << 20)
    assert [r.label for r in found] == ["1407374883553282", "1407374883553283", "1407374883553284"]
    assert [r.problem for r in found] == [None, None, None]
    assert found[0].body == XML_BODY and found[1].body == JSON_BODY and found[2].body == b"Hello from CMQ!"
    assert found[0].topic == "ci-callback-jobs" and found[0].publish_time.endswith("Z")


def test_the_documented_event_is_a_queue_event_with_a_non_callback_body():
    doc = scf_event("cmq-topic-event-doc.json")
    assert triggers.classify(doc) == triggers.QUEUE
    [record] = cmq.records(doc, 1 << 20)
    assert record.body == b"Hello from CMQ!" and record.msg_id == "123345346"


def test_envelopes_come_off():
    wrapped = json.dumps({"msgBody": XML_BODY.decode(), "msgId": "x"}).encode()
    assert cmq.unwrap(wrapped) == (XML_BODY, ("msgBody",))
    nested = json.dumps({"Message": json.dumps({"body": JSON_BODY.decode()})}).encode()
    assert cmq.unwrap(nested) == (JSON_BODY, ("Message", "body"))
    as_object = json.dumps({"Message": json.loads(JSON_BODY)}).encode()
    body, taken = cmq.unwrap(as_object)
    assert taken == ("Message",) and json.loads(body) == json.loads(JSON_BODY)
    encoded = base64.b64encode(XML_BODY)
    assert cmq.unwrap(encoded) == (XML_BODY, ("base64",))


def test_callbacks_are_never_unwrapped():
    # A Simple moderation callback has a "message" key: it is a callback, not an envelope.
    for body in (XML_BODY, JSON_BODY, SIMPLE_REVIEW, b"Hello from CMQ!", b"{not json", b"[1]", b""):
        assert cmq.unwrap(body) == (body, ())


def test_broken_records_say_what_is_wrong():
    event = {"Records": [{"CMQ": {"msgId": 1}}, {"cos": {}}, "x", {"CMQ": {"msgBody": "   "}},
                         {"CMQ": {"msgBody": "a" * 100}}, {"CMQ": {"msgBody": {"EventName": "TaskFinish"}}}]}
    found = cmq.records(event, 50)
    assert [r.problem for r in found] == ["message has no msgBody", "record is not a CMQ message",
                                          "record is not a CMQ message", "message has no msgBody",
                                          "msgBody exceeds the 50-byte limit", None]
    assert found[0].msg_id == "1" and json.loads(found[5].body) == {"EventName": "TaskFinish"}


def test_the_trigger_table():
    timer = scf_event("timer-event-doc.json")
    assert triggers.classify(timer) == triggers.TIMER
    assert triggers.classify(json.loads((EVENTS / "timer-reconcile.json").read_text())) == triggers.TIMER
    assert triggers.classify(BATCH) == triggers.QUEUE
    for other in ({"httpMethod": "POST", "body": "x"}, {"Records": [{"cos": {}}]}, {"Type": "Timer"}, [], None, "x",
                  json.loads((EVENTS / "apigw-smartcover-xml.json").read_text())):
        assert triggers.classify(other) == triggers.HTTP


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=15,
)
bodies = st.one_of(st.sampled_from([XML_BODY.decode(), JSON_BODY.decode(), SIMPLE_REVIEW.decode()]),
                   st.text(max_size=200), json_values.map(json.dumps))


@SETTINGS
@given(st.one_of(json_values, st.lists(st.dictionaries(st.sampled_from(["CMQ", "cos"]), json_values), max_size=4)
                 .map(lambda rs: {"Records": rs})))
def test_any_event_reads_without_raising(event):
    kind = triggers.classify(event)
    if kind == triggers.QUEUE:
        for record in cmq.records(event, 1 << 16):
            assert isinstance(record.body, bytes) and (record.problem is None or record.body == b"")
            assert record.problem is None or "\n" not in record.problem


@SETTINGS
@given(st.lists(bodies, min_size=1, max_size=5), st.sampled_from(["none", "msgBody", "Message", "base64"]))
def test_each_record_is_its_body_whatever_the_envelope(raw, envelope):
    def wrap(text: str) -> str:
        if envelope == "none":
            return text
        if envelope == "base64":
            return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()
        return json.dumps({envelope: text})

    found = cmq.records(_event(*(wrap(b) for b in raw)), 1 << 20)
    assert len(found) == len(raw)
    for record, original in zip(found, raw):
        if record.problem is not None:
            assert not original.strip() or not wrap(original).strip()
            continue
        try:
            expected = parse_callback(original).to_dict()
        except InvalidCallback:
            expected = None
        if expected is not None:  # every real callback survives its envelope intact
            assert parse_callback(record.body).to_dict() == expected
