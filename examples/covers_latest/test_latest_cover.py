"""Given a SmartCover success, when it arrives, then covers-latest/<input key>.json exists."""

import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
EVENTS = HERE.parents[1] / "events"


@pytest.fixture
def ci_index() -> Path:
    return HERE / "index.py"


def test_a_smartcover_success_writes_the_latest_covers(ci_app):
    answer = ci_app.deliver_event(EVENTS / "apigw-smartcover-xml.json")

    assert (answer.status, answer.payload["status"]) == (200, "processed")
    assert answer.payload["handlers"] == ["latest_cover", "job_succeeded"]  # a Tag beats the built-in's state
    assert ci_app.read_json("covers-latest/videos/launch day.mp4.json") == {
        "job_id": "j1a2b3c4d5e6f11ee9f0a525400000001",
        "input": "videos/launch day.mp4",
        "covers": [f"covers/launch-{n}.jpg" for n in range(5)],
    }


def test_each_test_gets_a_fresh_router(ci_app):
    from ci_callback import parse_callback
    from ci_callback_dev.events import body_of

    callback = parse_callback(body_of(json.loads((EVENTS / "apigw-smartcover-xml.json").read_text())))
    assert [route.name for route in ci_app.router.resolve(callback)] == ["latest_cover", "job_succeeded"]
