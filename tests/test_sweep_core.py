"""The sweep's pure half (ci_callback.sweep): window, verdicts, cursor, and CI's records turned
into the callbacks CI would have sent, read by the same parser."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from qcloud_cos.cos_comm import format_dict, xml_to_dict

from ci_callback.model.models import JobCallback, WorkflowCallback
from ci_callback.model.parse import parse_callback
from ci_callback.reconcile import plan as sweep
from conftest import QUERY

T0 = datetime(2026, 11, 20, 2, 30, tzinfo=timezone.utc)
WINDOW = sweep.Window(T0.timestamp(), lookback_minutes=180, pad_minutes=60, settle_minutes=2)


def corpus(name: str) -> dict:
    path = QUERY / name
    if not path.exists():
        pytest.skip(f"corpus sample {name} not found")
    data = path.read_bytes()
    data = data.split(b"\n\n", 1)[1] if data.startswith(b"HTTP/") else data
    # The doc samples' stray </Message> is a typo for <Message/>.
    document = xml_to_dict(re.sub(rb"\n\s*</Message>\n", b"\n<Message/>\n", data))
    format_dict(document, ["JobsDetail", "WorkflowExecution"])  # what the SDK does
    return document


def test_the_window_pads_creation_time_and_speaks_cis_format():
    query = WINDOW.query()
    # 02:30Z is 10:30 Beijing; 180 + 60 minutes + 5 of clock skew earlier is 06:25.
    assert query == {"StartCreationTime": "2026-11-20T06:25:00+0800", "EndCreationTime": "2026-11-20T10:35:00+0800"}
    assert WINDOW.ended_from == T0 - timedelta(minutes=180)
    assert WINDOW.ended_before == T0 - timedelta(minutes=2)


@pytest.mark.parametrize("state, ended, verdict", [
    ("Success", "2026-11-20T10:00:00+0800", sweep.PROCESS),
    ("Failed", "2026-11-20T10:00:00+0800", sweep.PROCESS),
    ("Cancel", "2026-11-20 10:00:00+0800", sweep.PROCESS),
    ("Success", "-", sweep.PROCESS),  # no end time to judge by
    ("Success", None, sweep.PROCESS),
    ("Success", "2026-11-20T10:29:30+0800", sweep.SETTLING),
    ("Success", "2026-11-20T07:29:00+0800", sweep.BEFORE),
    ("Running", "-", sweep.RUNNING),
    ("Submitted", "-", sweep.RUNNING),
    ("Pause", "2026-11-20T10:00:00+0800", sweep.RUNNING),
    (None, None, sweep.RUNNING),
    ("Finished", "2026-11-20T10:00:00+0800", sweep.PROCESS),  # undocumented: the router decides
])
def test_verdicts(state, ended, verdict):
    assert sweep.judge(state, ended, WINDOW) == verdict


def test_items_and_tokens_in_every_shape_the_sdk_returns():
    assert sweep.items({"JobsDetail": [{"a": 1}, None]}, "JobsDetail") == [{"a": 1}]
    assert sweep.items({"WorkflowExecutionList": {"RunId": "r"}}, "WorkflowExecutionList") == [{"RunId": "r"}]
    assert sweep.items({"NextToken": None}, "JobsDetail") == [] and sweep.items(None, "x") == []
    assert [sweep.next_token(r) for r in ({"NextToken": "225508"}, {"NextToken": None}, {"NextToken": " "}, {},
                                          {"NextToken": 7})] == ["225508", None, None, None, "7"]


def test_a_listed_job_is_the_callback_ci_would_have_sent():
    listed = corpus("DescribeMediaJobs-http-1-list.txt")
    assert sweep.next_token(listed) == "225508"
    running, done = sweep.items(listed, "JobsDetail")
    callback = parse_callback(sweep.job_body(done))
    assert isinstance(callback, JobCallback)
    assert (callback.job_id, callback.tag, callback.state) == ("j9c0a4726f6ac11ec96aaa9b64ab18d00", "Transcode", "Success")
    assert callback.input.bucket == "test-123456789" and callback.input.region == "ap-chongqing"
    assert [o.key for o in callback.outputs] == ["output/out.mp4"]
    assert sweep.judge(callback.state, done.get("EndTime"), WINDOW) == sweep.BEFORE  # 2022
    assert sweep.judge(running.get("State"), running.get("EndTime"), WINDOW) == sweep.RUNNING


def test_a_listed_run_is_the_workflow_callback_ci_would_have_sent():
    run = sweep.items(corpus("DescribeWorkflowExecution-xml-1.xml"), "WorkflowExecution")[0]
    callback = parse_callback(sweep.run_body(run, "examplebucket-1250000000", "ap-guangzhou"))
    assert isinstance(callback, WorkflowCallback)
    assert callback.run_id == "i166ee19017b011eda8a5525400c540df" and callback.state == "Success"
    assert callback.input.bucket == "examplebucket-1250000000" and callback.input.region == "ap-guangzhou"
    assert callback.input.key == "wk-test/game.mp4" and len(callback.tasks) == 2
    named = dict(run, BucketId="other-1250000000", Region="ap-beijing")
    again = parse_callback(sweep.run_body(named, "examplebucket-1250000000", "ap-guangzhou"))
    assert (again.input.bucket, again.input.region) == ("other-1250000000", "ap-beijing")


def test_a_runs_detail_names_its_workflow_by_name_and_its_object_by_key():
    """Issue 17: a run's name may come only as <Name>; an older sample gives Object as a full URL."""
    named = sweep.items(corpus("DescribeWorkflowExecution-xml-1.xml"), "WorkflowExecution")[0]
    assert "WorkflowName" not in named
    callback = parse_callback(sweep.run_body(named, "examplebucket-1250000000", "ap-guangzhou"))
    assert isinstance(callback, WorkflowCallback) and callback.workflow_name == "workflow-1"
    older = sweep.items(corpus("DescribeWorkflowExecution-xml-2.xml"), "WorkflowExecution")[0]
    assert older["Object"].startswith("https://")
    callback = parse_callback(sweep.run_body(older, "examplebucket-1250000000", "ap-beijing"))
    assert isinstance(callback, WorkflowCallback)
    assert (callback.input.bucket, callback.input.key) == ("examplebucket-1250000000", "mars_white_test.mp4")
    assert callback.workflow_name is None  # <WorkflowName></WorkflowName>, and no <Name>


def test_the_cursor_round_trips_and_refuses_what_it_did_not_write():
    cursor = sweep.Cursor("abc", T0.timestamp(), stream=2, token="225508")
    document = json.loads(json.dumps(cursor.to_json()))
    assert sweep.Cursor.from_json(document, "abc") == cursor
    assert sweep.Cursor.from_json(document, "other-spec") is None
    for broken in (None, [], {}, dict(document, schema=2), dict(document, stream="x"), dict(document, phase="?"),
                   dict(document, bucket=-1), {k: v for k, v in document.items() if k != "started_at"}):
        assert sweep.Cursor.from_json(broken, "abc") is None
    assert cursor.window(180, 60, 2) == WINDOW


def test_the_summary_counts_reasons():
    summary = sweep.Summary(listed=3)
    summary.skip(sweep.RUNNING)
    summary.skip(sweep.RUNNING)
    summary.skip(sweep.SETTLING)
    assert summary.to_json()["reasons"] == {"running": 2, "settling": 1} and summary.skipped == 3
