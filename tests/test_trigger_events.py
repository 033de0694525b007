"""The project's own timer and CMQ sample events (events/), checked against the documented shapes
(SCF doc 583/31927; the shared corpus's timer-event-doc.json and cmq-topic-event-doc.json)."""

from __future__ import annotations

import json

from ci_callback.errors import InvalidCallback
from ci_callback.model.parse import parse_callback
from ci_callback.reconcile.spec import parse_spec
from conftest import EVENTS, scf_event

_doc = scf_event


def test_timer_sample_has_the_documented_keys_and_a_valid_spec():
    sample = json.loads((EVENTS / "timer-reconcile.json").read_text(encoding="utf-8"))
    assert set(sample) == set(_doc("timer-event-doc.json"))
    assert isinstance(sample["Message"], str) and len(sample["Message"].encode()) <= 4096
    spec = parse_spec(sample["Message"])
    assert {s.kind for s in spec.sources} == {"queue", "pic_queue", "workflow"}


def test_cmq_sample_is_a_batch_of_callback_bodies_and_one_malformed_record():
    sample = json.loads((EVENTS / "cmq-topic-batch.json").read_text(encoding="utf-8"))
    documented = _doc("cmq-topic-event-doc.json")["Records"][0]["CMQ"]
    assert len(sample["Records"]) >= 3
    outcomes = []
    for record in sample["Records"]:
        assert set(record) == {"CMQ"} and set(record["CMQ"]) == set(documented)
        assert record["CMQ"]["type"] == "topic"
        try:
            outcomes.append(parse_callback(record["CMQ"]["msgBody"]).state)
        except InvalidCallback:
            outcomes.append("malformed")
    assert outcomes == ["Success", "Failed", "malformed"]
