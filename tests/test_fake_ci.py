"""The fake CI's list endpoints, driven through the real SDK (cos_client.py ``ci_list_media_jobs``,
``ci_list_media_pic_jobs``, ``ci_list_workflowexecution``, ``ci_get_workflowexecution``) and
compared with the responses CI's API documents (the shared corpus's query samples)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_comm import format_dict, xml_to_dict
from qcloud_cos.cos_exception import CosServiceError

from conftest import BUCKET, QUERY, REGION
from fake_ci import PIC_QUEUE, QUEUE, WORKFLOW, FakeCI, job_stamp

SECRET_ID = "AKIDlocaltest"
SECRET_KEY = "localtestkey"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
STATES = ["Submitted", "Running", "Success", "Failed", "Cancel", "Pause", "Success"]


@pytest.fixture
def ci():
    with FakeCI(secret_id=SECRET_ID, secret_key=SECRET_KEY) as server:
        yield server


def client(server: FakeCI, region: str = REGION) -> CosS3Client:
    return CosS3Client(CosConfig(Region=region, SecretId=SECRET_ID, SecretKey=SECRET_KEY, Scheme="http",
                                 IP="127.0.0.1", Port=server.port), retry=0)


def corpus_body(name: str) -> bytes:
    path = QUERY / name
    if not path.exists():
        pytest.skip(f"corpus sample {name} not found under {QUERY}")
    data = path.read_bytes()
    return data.split(b"\n\n", 1)[1] if data.startswith(b"HTTP/") else data


def seed(ci: FakeCI, count: int = 7, tag: str = "Transcode") -> list[str]:
    ids = []
    for i in range(count):
        job_id = f"j{i:032x}"
        ci.add_job(job_id, tag, STATES[i % len(STATES)], BUCKET, f"in/{i}.mp4",
                   created=NOW - timedelta(minutes=10 * i))
        ids.append(job_id)
    return ids


def test_list_pages_follow_next_token_and_cover_every_job_once(ci):
    ids = seed(ci, 7)
    seen, token, pages = [], "", 0
    while True:
        page = client(ci).ci_list_media_jobs(Bucket=BUCKET, Tag="Transcode", QueueId=QUEUE, Size=3, NextToken=token)
        seen += [j["JobId"] for j in page.get("JobsDetail") or []]
        pages += 1
        token = page.get("NextToken") or ""
        if not token:
            break
    assert pages == 3 and seen == ids  # Desc by creation time: newest first
    assert {j.state for j in ci._jobs.values()} >= {"Submitted", "Running", "Success", "Failed", "Cancel", "Pause"}
    assert all(r.status == 200 and r.query["size"] == "3" for r in ci.requests)


def test_states_and_creation_time_filter(ci):
    ids = seed(ci, 7)
    c = client(ci)
    done = c.ci_list_media_jobs(Bucket=BUCKET, Tag="Transcode", QueueId=QUEUE, States="Success,Failed", Size=100)
    assert sorted(j["JobId"] for j in done["JobsDetail"]) == sorted([ids[2], ids[3], ids[6]])
    window = c.ci_list_media_jobs(Bucket=BUCKET, Tag="Transcode", QueueId=QUEUE, Size=100,
                                  StartCreationTime=job_stamp(NOW - timedelta(minutes=25)),
                                  EndCreationTime=job_stamp(NOW - timedelta(minutes=5)))
    assert [j["JobId"] for j in window["JobsDetail"]] == [ids[1], ids[2]]
    # The window is on creation time only: a job created before it is not listed, even if it ended inside it.
    assert "+" in ci.requests[-1].query["startCreationTime"]  # +0800 survives the query encoding
    asc = c.ci_list_media_jobs(Bucket=BUCKET, Tag="Transcode", QueueId=QUEUE, Size=100, OrderByTime="Asc")
    assert [j["JobId"] for j in asc["JobsDetail"]] == ids[::-1]


@pytest.mark.parametrize("kwargs, why", [
    ({"Size": 101}, "size"), ({"Size": 0}, "size"), ({"QueueId": None}, "queueId"),
    ({"Tag": ""}, "tag"), ({"NextToken": "bogus"}, "nextToken"), ({"StartCreationTime": "yesterday"}, "time"),
])
def test_bad_list_requests_answer_400_invalid_argument(ci, kwargs, why):
    args = {"Bucket": BUCKET, "Tag": "Transcode", "QueueId": QUEUE, **kwargs}
    with pytest.raises(CosServiceError) as refused:
        client(ci).ci_list_media_jobs(**args)
    assert refused.value.get_status_code() == 400
    assert refused.value.get_error_code() == "InvalidArgument"
    assert why in refused.value.get_error_msg()


def test_list_is_signed_over_its_query_parameters(ci):
    seed(ci, 1)
    bad = CosS3Client(CosConfig(Region=REGION, SecretId=SECRET_ID, SecretKey="wrong", Scheme="http",
                                IP="127.0.0.1", Port=ci.port), retry=0)
    with pytest.raises(CosServiceError) as denied:
        bad.ci_list_media_jobs(Bucket=BUCKET, Tag="Transcode", QueueId=QUEUE)
    assert denied.value.get_status_code() == 403


def test_pic_jobs_are_listed_on_their_own_route(ci):
    seed(ci, 2)
    ci.add_job("c" + "1" * 32, "PicProcess", "Success", BUCKET, "in/deer.jpg")
    c = client(ci)
    pics = c.ci_list_media_pic_jobs(Bucket=BUCKET, Tag="PicProcess", QueueId=PIC_QUEUE, Size=10)
    assert [j["JobId"] for j in pics["JobsDetail"]] == ["c" + "1" * 32]
    assert ci.requests[-1].path == "/pic_jobs"
    # An empty page: no JobsDetail at all (the SDK listifies only a present one).
    assert not c.ci_list_media_jobs(Bucket=BUCKET, Tag="PicProcess", QueueId=PIC_QUEUE).get("JobsDetail")


def test_list_job_elements_have_the_documented_shape(ci):
    ci.add_job("j9c0a4726f6ac11ec96aaa9b64ab18d00", "Transcode", "Success", BUCKET, "input/demo.mp4")
    ci.add_job("j8d121820f5e411ec926ef19d53ba9c6f", "Transcode", "Running", BUCKET, "input/demo.mp4")
    ours = client(ci).ci_list_media_jobs(Bucket=BUCKET, Tag="Transcode", QueueId=QUEUE, Size=1)
    # The corpus sample has a stray </Message> (a doc typo for <Message/>): fix it to read the shape.
    theirs = xml_to_dict(re.sub(rb"\n\s*</Message>\n", b"\n<Message/>\n", corpus_body("DescribeMediaJobs-http-1-list.txt")))
    format_dict(theirs, ["JobsDetail"])
    assert set(ours) == set(theirs) == {"JobsDetail", "NextToken"}
    mine, doc = ours["JobsDetail"][0], theirs["JobsDetail"][1]  # both Success
    assert set(mine) == set(doc)
    assert set(mine["Input"]) == set(doc["Input"])
    assert {"Output", "TemplateId", "MediaResult"} <= set(mine["Operation"]) & set(doc["Operation"])
    running = client(ci).ci_list_media_jobs(Bucket=BUCKET, Tag="Transcode", QueueId=QUEUE, Size=1,
                                            NextToken=ours["NextToken"])["JobsDetail"][0]
    assert running["EndTime"] == theirs["JobsDetail"][0]["EndTime"] == "-"


def test_workflow_list_pages_and_a_single_item_stays_a_dict(ci):
    for i in range(3):
        ci.add_run(f"i{i:032x}", ["Success", "Failed", "Running"][i], f"wk/{i}.mp4", workflow_id=WORKFLOW,
                   created=NOW - timedelta(minutes=i))
    c = client(ci)
    first = c.ci_list_workflowexecution(Bucket=BUCKET, WorkflowId=WORKFLOW, Size=2)
    assert isinstance(first["WorkflowExecutionList"], list) and len(first["WorkflowExecutionList"]) == 2
    last = c.ci_list_workflowexecution(Bucket=BUCKET, WorkflowId=WORKFLOW, Size=2, NextToken=first["NextToken"])
    # The SDK listifies only "WorkflowExecution" (cos_client.py ci_list_workflowexecution): one item is a dict.
    assert isinstance(last["WorkflowExecutionList"], dict)
    assert last["WorkflowExecutionList"]["State"] == "Running"
    assert not last.get("NextToken")
    theirs = xml_to_dict(corpus_body("DescribeWorkflowExecutions-xml-1.xml"))
    assert set(first) == set(theirs)
    assert set(first["WorkflowExecutionList"][0]) == set(theirs["WorkflowExecutionList"][0])
    with pytest.raises(CosServiceError) as refused:
        c.ci_list_workflowexecution(Bucket=BUCKET, WorkflowId="")
    assert refused.value.get_status_code() == 400
    run = c.ci_get_workflowexecution(Bucket=BUCKET, RunId=f"i{0:032x}")
    assert run["WorkflowExecution"][0]["State"] == "Success"


@pytest.mark.parametrize("end_token", ["empty", "absent", "dangling"])
def test_last_page_forms(end_token):
    with FakeCI(SECRET_ID, SECRET_KEY, end_token=end_token) as ci:
        seed(ci, 2)
        c = client(ci)
        page = c.ci_list_media_jobs(Bucket=BUCKET, Tag="Transcode", QueueId=QUEUE, Size=2)
        assert len(page["JobsDetail"]) == 2
        if end_token == "dangling":
            tail = c.ci_list_media_jobs(Bucket=BUCKET, Tag="Transcode", QueueId=QUEUE, Size=2,
                                        NextToken=page["NextToken"])
            assert not tail.get("JobsDetail") and not tail.get("NextToken")
        else:
            assert ("NextToken" in page) is (end_token == "empty") and not page.get("NextToken")


def test_wrong_region_is_404_no_such_bucket(ci):
    seed(ci, 1)
    ci.bucket_region(BUCKET, REGION)
    assert client(ci).ci_list_media_jobs(Bucket=BUCKET, Tag="Transcode", QueueId=QUEUE)["JobsDetail"]
    with pytest.raises(CosServiceError) as missing:
        client(ci, "ap-beijing").ci_get_workflowexecution(Bucket=BUCKET, RunId="i0")
    assert (missing.value.get_status_code(), missing.value.get_error_code()) == (404, "NoSuchBucket")
