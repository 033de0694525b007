"""Contract of ``ci-callback connect``: given the sweep spec's queues and workflow on the local CI
(spoken to through the real SDK), a dry run shows current → planned and writes nothing; --apply
wires them keeping each queue's Name and State; a second --apply writes nothing; no token whole."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ci_callback_dev.cli import main
from ci_callback_dev.connect import MAX_URL_CHARS, base_of, intranet, shown, url_problem
from conftest import BUCKET, REGION
from fake_ci import PIC_QUEUE, QUEUE, WORKFLOW

TOKEN = "Zr0m6sQe1kHq9yVb2Tn8Aw"  # make token's length: 22 characters
# The public form <app-id>-<url-id>.<region>.tencentscf.com (doc 583/96099); the url-id is made up.
FUNCTION_URL = "https://1250000000-k3j9x2p7qa.ap-guangzhou.tencentscf.com/"
SPEC = json.dumps({"reconcile": {"sources": [
    {"bucket": BUCKET, "region": REGION, "queue": QUEUE, "tags": ["Transcode"]},
    {"bucket": BUCKET, "region": REGION, "pic_queue": PIC_QUEUE},
    {"bucket": BUCKET, "region": REGION, "workflow": WORKFLOW}]}})
ELSEWHERE = {"State": "On", "Type": "Url", "Url": "https://old.example.com/cb", "Event": "TaskFinish",
             "ResultFormat": "XML"}


@pytest.fixture
def ci(fake_ci, monkeypatch):
    monkeypatch.setenv("CI_CALLBACK_TOKENS", f"old-token-1234,{TOKEN}")  # a rotation: the new one last
    monkeypatch.setenv("CI_CALLBACK_CI_ENDPOINT", fake_ci.url)
    monkeypatch.setenv("CI_CALLBACK_RECONCILE_SPEC", SPEC)
    fake_ci.add_queue(QUEUE, name="transcode-queue", state="Paused", notify=ELSEWHERE)
    fake_ci.add_queue(PIC_QUEUE, pic=True, name="pic-queue")
    fake_ci.add_workflow(WORKFLOW, name="wf-1", notify=dict(ELSEWHERE))
    return fake_ci


pytestmark = pytest.mark.usefixtures("logs_at_info")  # conftest: logs to stdout at INFO


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(["connect", *argv])
    out, err = capsys.readouterr()
    return code, out + err


def test_a_dry_run_shows_current_and_planned_and_writes_nothing(ci, capsys):
    code, out = run(capsys, "--url", FUNCTION_URL)
    assert code == 0
    assert ci.writes == []
    assert out.count("[would write]") == 3
    assert "On https://old.example.com/cb TaskFinish XML → On " + FUNCTION_URL + "?token=Zr0m… TaskFinish JSON" in out
    assert "TaskFinish,WorkflowFinish JSON" in out  # the workflow gets both events
    assert "nothing written" in out
    assert TOKEN not in out


def test_apply_wires_each_queue_keeping_its_name_and_state_then_a_second_apply_writes_nothing(ci, capsys):
    code, out = run(capsys, "--url", FUNCTION_URL, "--apply")
    assert code == 0 and out.count("[written]") == 3 and TOKEN not in out
    queue = ci.queue(QUEUE)
    assert (queue["Name"], queue["State"]) == ("transcode-queue", "Paused")
    assert queue["NotifyConfig"] == {"State": "On", "Type": "Url", "Url": f"{FUNCTION_URL}?token={TOKEN}",
                                     "Event": "TaskFinish", "ResultFormat": "JSON"}
    assert ci.queue(PIC_QUEUE, pic=True)["NotifyConfig"]["Url"] == f"{FUNCTION_URL}?token={TOKEN}"
    flow = ci.workflow(WORKFLOW)
    start = flow["Topology"]["Nodes"]["Start"]
    assert start["Input"]["NotifyConfig"]["Event"] == "TaskFinish,WorkflowFinish"
    # Only the callback changed: the rest of the topology is as it was.
    assert start["Input"]["QueueId"] == QUEUE and "Transcode_1581665960538" in flow["Topology"]["Nodes"]
    assert flow["Name"] == "wf-1"
    assert len(ci.writes) == 3

    code, out = run(capsys, "--url", FUNCTION_URL, "--apply")
    assert code == 0 and out.count("[wired]") == 3
    assert len(ci.writes) == 3


def test_one_queue_by_flags(ci, capsys):
    code, out = run(capsys, "--url", FUNCTION_URL, "--queue", QUEUE, "--bucket", BUCKET, "--region", REGION,
                    "--apply", "--format", "xml")
    assert code == 0 and out.count("[written]") == 1
    assert ci.queue(QUEUE)["NotifyConfig"]["ResultFormat"] == "XML"
    assert ci.queue(PIC_QUEUE, pic=True)["NotifyConfig"]["State"] == "Off"


def test_tdmq_delivery(ci, capsys):
    code, _ = run(capsys, "--via", "tdmq", "--mq-region", "gz", "--mq-name", "ci-callbacks", "--queue", QUEUE,
                  "--bucket", BUCKET, "--region", REGION, "--apply")
    assert code == 0
    notify = ci.queue(QUEUE)["NotifyConfig"]
    assert (notify["Type"], notify["MqMode"], notify["MqRegion"], notify["MqName"]) == ("TDMQ", "Topic", "gz",
                                                                                        "ci-callbacks")


@pytest.mark.parametrize("url, says", [
    ("https://fn.example.com/" + "p" * 80, "characters; CI accepts at most 100"),
    ("http://10.0.3.4/", "intranet address"),
    ("http://127.0.0.1:9000/", "intranet address"),
    ("https://1250000000-k3j9x2p7qa.in.ap-guangzhou.tencentscf.com/", "intranet address"),
    ("https://fn.example.com/?token=not-configured", "not in CI_CALLBACK_TOKENS"),
])
def test_refused_with_one_line_and_no_write(ci, capsys, url, says):
    code, out = run(capsys, "--url", url, "--apply")
    assert code == 1
    assert ci.writes == [] and ci.requests == []
    assert says in out and "not-configured" not in out


def test_a_queue_ci_does_not_list_is_named(ci, capsys):
    code, out = run(capsys, "--url", FUNCTION_URL, "--queue", "pmissing", "--bucket", BUCKET, "--region", REGION)
    assert code == 1 and "CI lists no such queue" in out


def test_make_tokens_fit_the_url_limit():
    """`make token` prints 22 characters: a Function URL with ?token= stays under 100: 87 here, 108 with the 43 characters `make token` printed before."""
    url = f"{FUNCTION_URL}?token={TOKEN}"
    assert len(url) == 87 <= MAX_URL_CHARS
    assert url_problem(url, (TOKEN,)) is None
    assert shown(url).endswith("?token=Zr0m…")
    assert base_of(url) == FUNCTION_URL
    assert intranet("http://192.168.1.2/") and not intranet(FUNCTION_URL)


@given(token=st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=5, max_size=40),
       path=st.text(alphabet=string.ascii_letters + "/", max_size=20))
def test_a_token_is_never_shown_whole(token, path):
    url = f"https://fn.example.com/{path}?token={token}"
    assert token not in shown(url)
    problem = url_problem(url, ())
    assert problem is not None and token not in problem


@given(st.text(max_size=200))
def test_any_url_text_gets_an_answer_not_a_crash(text):
    problem = url_problem(text, ("tok12345",))
    assert problem is None or "\n" not in problem
