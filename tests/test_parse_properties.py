"""Property tests: whatever arrives, parse_callback either returns a sane model or raises InvalidCallback.

Inputs are arbitrary bytes and text, CI-shaped documents built from the field names CI uses,
and mutations of valid bodies (byte flips, truncation, element deletion / duplication /
replacement in dict form, re-serialised as JSON or XML). Seeds are small inline bodies plus,
when ../shared is present, every corpus sample (read in place, never copied).
"""

from __future__ import annotations

import json
from datetime import datetime

import xmltodict
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ci_callback import InvalidCallback, parse_callback
from conftest import CALLBACKS

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ALWAYS = ("kind", "event", "state", "created_at")

# ------------------------------------------------------------------ seeds

INLINE_SEEDS = [
    b"<Response><EventName>TaskFinish</EventName><JobsDetail><Code>Success</Code>"
    b"<CreationTime>2023-03-01T10:00:00+0800</CreationTime><Input><BucketId>b-1250000000</BucketId>"
    b"<Object>in/a.mov</Object><Region>ap-shanghai</Region><CosHeaders><Key>k</Key><Value>v</Value></CosHeaders>"
    b"</Input><JobId>j-inline</JobId><Message/><Operation><MediaResult><OutputFile><Bucket>b-1250000000</Bucket>"
    b"<Md5Info><Md5>aa</Md5><ObjectName>out/s-0.jpg</ObjectName></Md5Info><ObjectName>0.jpg</ObjectName>"
    b"<ObjectName>1.jpg</ObjectName><ObjectPrefix>out/s-</ObjectPrefix><Region>ap-shanghai</Region>"
    b"<SpriteOutputFile><ObjectName>0.jpg</ObjectName><ObjectPrefix>out/sp-</ObjectPrefix></SpriteOutputFile>"
    b"</OutputFile></MediaResult><Output><Bucket>b-1250000000</Bucket><Object>out/s-${Number}.jpg</Object>"
    b"<Region>ap-shanghai</Region></Output></Operation><State>Success</State><Tag>Snapshot</Tag>"
    b"<Workflow><Name>n</Name><RunId>r</RunId><WorkflowId>w</WorkflowId><WorkflowName>wn</WorkflowName></Workflow>"
    b"</JobsDetail></Response>",
    json.dumps({
        "EventName": "TaskFinish",
        "JobsDetail": [{
            "JobId": "c-pic", "State": "Success", "Tag": "PicProcess",
            "CreationTime": "2022-07-18T15:16:43+0800",
            "Input": {"BucketId": "p-1", "Object": "a.jpg", "Region": "ap-chongqing"},
            "Operation": {
                "Output": {"Bucket": "p-1", "Object": "b.jpg", "Region": "ap-chongqing"},
                "PicProcessResult": {
                    "ObjectName": "b.jpg",
                    "OriginalInfo": {"Etag": "\"abc\"", "ImageInfo": {"Width": "500", "Height": 417}},
                    "ProcessResult": {"Size": "24911", "Format": "JPEG"},
                },
                "SmartCover": {"Count": "3"},
            },
        }],
    }).encode(),
    b"<Response><EventName>WorkflowFinish</EventName><WorkflowExecution><RunId>r-inline</RunId>"
    b"<BucketId>b-1</BucketId><Object>o.mp4</Object><CosHeaders><Key>x-cos-meta-id</Key><Value>1</Value></CosHeaders>"
    b"<WorkflowId>w1</WorkflowId><WorkflowName/><CreateTime>2021-09-14 15:00:26+0800</CreateTime><State>Failed</State>"
    b"<Tasks><Type>Transcode</Type><CreateTime>2021-09-14 15:00:27+0800</CreateTime><EndTime>-</EndTime>"
    b"<State>Failed</State><JobId>j1</JobId></Tasks><Tasks><Type>Snapshot</Type><JobId>j2</JobId>"
    b"<ResultInfo><ObjectInfo><ObjectName>a.jpg</ObjectName></ObjectInfo></ResultInfo></Tasks>"
    b"</WorkflowExecution></Response>",
    json.dumps({
        "code": 0, "message": "ok",
        "data": {"event": "ReviewImage", "trace_id": "t1",
                 "url": "https://eb-1250000000.cos.ap-chongqing.myqcloud.com/a%20b.jpg", "result": 1,
                 "forbidden_status": 0, "porn_info": {"hit_flag": 1, "score": 90, "label": "xx"},
                 "cos_headers": {"x-cos-meta-id": "1"}},
    }).encode(),
    json.dumps({"code": 0, "message": "this is a test", "data": {}}).encode(),
    json.dumps({
        "EventName": "ReviewText",
        "JobsDetail": {"JobId": "st1", "State": "Success", "CreationTime": "", "Suggestion": "1", "Label": "",
                       "PornInfo": {"HitFlag": 1, "Score": "88", "Label": "p"}, "CosHeaders": {"a": "b"}},
    }).encode(),
    json.dumps({"Response": {"EventName": "TaskFinish", "JobsDetail": {
        "JobId": "w-1", "State": "Success", "Tag": "WordsGeneralize",
        "Operation": {"Output": {"Object": "o.txt", "StreamExtract": {"Output": "s.txt"}}}}}}).encode(),
]


def _corpus_seeds():
    if not CALLBACKS.is_dir():
        return []
    return [p.read_bytes() for p in sorted(CALLBACKS.iterdir()) if p.suffix in (".xml", ".json")]


SEEDS = INLINE_SEEDS + _corpus_seeds()


def _as_document(body: bytes):
    """The dict form of a seed body (None when it is not readable, e.g. the malformed doc sample)."""
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    try:
        if stripped.startswith(b"<"):
            return xmltodict.parse(body)
        return json.loads(body)
    except Exception:  # a seed that is itself malformed simply yields no document
        return None


DOCUMENTS = [d for d in (_as_document(s) for s in SEEDS) if d is not None]

# ------------------------------------------------------------------ the property itself


def check(body, content_type=None):
    """The only exception allowed is InvalidCallback; a result is JSON-able and has the always-present keys."""
    try:
        callback = parse_callback(body, content_type)
    except InvalidCallback as exc:
        text = str(exc)
        assert text and "\n" not in text and "\r" not in text and len(text) <= 200
        return None
    data = callback.to_dict()
    # strict JSON: no NaN / Infinity. (Unpaired surrogates from "\\ud800" escapes may pass through by
    # design; the HTTP and log layers escape them, so only ASCII-escaped JSON is required here.)
    json.dumps(data, allow_nan=False)
    for key in ALWAYS:
        assert key in data, key
    assert data["kind"] in ("job", "workflow", "moderation")
    if data["created_at"] is not None:
        assert datetime.fromisoformat(data["created_at"]).tzinfo is not None
    if data["kind"] == "job":
        assert isinstance(data["job_id"], str) and data["job_id"].strip()
        assert isinstance(data["event"], str) and data["event"]
        keys = [o["object"] for o in data["outputs"]]
        assert all(isinstance(k, str) and k and "${" not in k for k in keys)
        assert len(set(map(json.dumps, data["outputs"]))) == len(data["outputs"]), "an output listed twice"
    elif data["kind"] == "workflow":
        assert isinstance(data["run_id"], str) and data["run_id"].strip()
        assert data["event"]
        for item in data["tasks"]:
            for stamp in (item["created_at"], item["ended_at"]):
                assert stamp is None or datetime.fromisoformat(stamp).tzinfo is not None
    else:
        assert data["form"] in ("simple", "detail")
        assert isinstance(data["is_test"], bool)
        assert data["event"] is None or isinstance(data["event"], str)
    return data


# ------------------------------------------------------------------ arbitrary input


@SETTINGS
@given(st.binary(max_size=2048), st.sampled_from([None, "application/json", "application/xml", "text/html"]))
def test_arbitrary_bytes(body, content_type):
    check(body, content_type)


@SETTINGS
@given(st.text(max_size=1024))
def test_arbitrary_text(body):
    check(body)


@SETTINGS
@given(st.sampled_from(["{", '{"JobsDetail":{"JobId":"', '{"code":0,"data":{"event":"ReviewImage","trace_id":"']),
       st.text(st.characters(codec=None), max_size=64))  # includes surrogates, which st.text() leaves out
def test_text_with_surrogates(prefix, tail):
    check(prefix + tail + '"}}')


PREFIXES = [
    b"<", b"{", b"[", b"\xef\xbb\xbf<", b"<?xml version='1.0'?>", b'<?xml version="1.0" encoding="',
    b"<?xml version='1.0' encoding='utf-8'?><Response><JobsDetail><JobId>", b"<Response>",
    b"<Response><JobsDetail>", b'{"JobsDetail":', b'{"EventName":"TaskFinish","JobsDetail":{"JobId":',
    b'{"code":0,"data":', b"<!DOCTYPE ", b"<!ENTITY ",
]


@SETTINGS
@given(st.sampled_from(PREFIXES), st.binary(max_size=1024))
def test_bytes_that_look_like_a_callback(prefix, tail):
    check(prefix + tail)


# ------------------------------------------------------------------ CI-shaped documents

NAMES = ["Response", "EventName", "JobsDetail", "JobId", "State", "Tag", "Code", "Message", "CreationTime",
         "CreateTime", "EndTime", "Input", "BucketId", "Bucket", "Region", "Object", "CosHeaders", "Key", "Value",
         "Operation", "Output", "MediaResult", "PicProcessResult", "DocProcessResult", "XResult", "OutputFile",
         "ObjectName", "ObjectPrefix", "Md5Info", "Md5", "SpriteOutputFile", "PageInfo", "TgtUri", "AuObject",
         "SpriteObject", "StreamExtract", "Workflow", "WorkflowExecution", "RunId", "WorkflowId", "WorkflowName",
         "Tasks", "Type", "ResultInfo", "ObjectInfo", "OriginalInfo", "ProcessResult", "ImageInfo", "Etag",
         "Width", "SmartCover", "Count", "DeleteDuplicates", "Result", "Suggestion", "Label", "Score",
         "PornInfo", "HitFlag", "Url", "code", "message", "data", "event", "trace_id", "url", "result", "score",
         "porn_info", "hit_flag", "label", "cos_headers"]
EVENTS = ["TaskFinish", "WorkflowFinish", "ReviewImage", "ReviewText", "ReviewDocument", "Review", ""]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),  # JSON bodies cannot carry NaN; 1e308-scale and inf-free floats here
    st.sampled_from(["", " ", "-", "Success", "Failed", "0", "5", "N.N", "${Number}", "a-${x}.jpg", "\"etag\"",
                     "2022-06-30T15:29:42+0800", "2021-09-14 15:00:26+0800", "2022-08-03T18:45:50+08:00",
                     "2022-13-45T99:99:99+9999", "https://b-1.cos.ap-guangzhou.myqcloud.com/%E4%B8%AD%zz",
                     "out/a.mp4", "test"] + EVENTS),
    st.text(max_size=20),
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2),  # lone surrogates ("\\ud800" in JSON)
)


def _trees(leaves):
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.sampled_from(NAMES), children, max_size=6),
        ),
        max_leaves=40,
    )


TREES = _trees(SCALARS)
ROOTS = st.one_of(
    st.fixed_dictionaries({"EventName": st.sampled_from(EVENTS), "JobsDetail": TREES}),
    st.fixed_dictionaries({"EventName": st.sampled_from(EVENTS), "WorkflowExecution": TREES}),
    st.fixed_dictionaries({"code": SCALARS, "message": SCALARS, "data": TREES}),
    st.fixed_dictionaries({"Response": TREES}),
    st.dictionaries(st.sampled_from(NAMES), TREES, max_size=5),
)


def to_xml(document) -> bytes:
    """Serialise a dict document as XML (wrapping it in <Response> unless it has one root already)."""
    root = document if isinstance(document, dict) and len(document) == 1 else {"Response": document}
    return xmltodict.unparse(root, full_document=False).encode("utf-8")


@SETTINGS
@given(ROOTS, st.booleans())
def test_ci_shaped_documents(document, xml):
    if xml:
        try:
            body = to_xml(document)
        except (ValueError, TypeError):
            assume(False)
    else:
        body = json.dumps(document).encode("utf-8")
    check(body)


# ------------------------------------------------------------------ mutations of valid bodies


@SETTINGS
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1,
                                         max_size=8))
def test_byte_flips(seed, flips):
    body = bytearray(seed)
    for index, value in flips:
        body[index % len(body)] = value
    check(bytes(body))


@SETTINGS
@given(st.sampled_from(SEEDS), st.floats(min_value=0, max_value=1))
def test_truncation(seed, fraction):
    body = seed[: int(len(seed) * fraction)]
    result = check(body)
    if len(body) < len(seed.rstrip()) and seed.lstrip().startswith(b"<"):
        # Truncated XML is never well-formed, so it is never accepted.
        assert result is None


def _copy(value):
    return json.loads(json.dumps(value))


JUNK = [None, "", "x", 0, -1, 1.5, True, [], {}, [None], ["a", "b"], {"Key": "k"}, "${Number}", "-"]


def _walk_to(draw, node):
    """Draw a path to some node of the tree: [(container, key), …]."""
    path = []
    while isinstance(node, (dict, list)) and node:
        if path and draw(st.booleans()):
            break
        keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        path.append((node, key))
        node = node[key]
    return path


@st.composite
def mutated_documents(draw):
    document = _copy(draw(st.sampled_from(DOCUMENTS)))
    for _ in range(draw(st.integers(1, 4))):
        path = _walk_to(draw, document)
        if not path:
            break
        container, key = path[-1]
        action = draw(st.sampled_from(["delete", "duplicate", "replace", "wrap"]))
        if action == "delete":
            del container[key]
        elif action == "duplicate":
            value = container[key]
            if isinstance(container, list):
                container.insert(key, _copy(value))
            else:
                container[key] = [value, _copy(value)] if not isinstance(value, list) else value + _copy(value)
        elif action == "replace":
            container[key] = _copy(draw(st.sampled_from(JUNK)))  # never share JUNK's mutable values
        else:
            container[key] = [container[key]]
    return document


@SETTINGS
@given(mutated_documents(), st.booleans())
def test_element_deletion_duplication_replacement(document, xml):
    if xml:
        try:
            body = to_xml(document)
        except (ValueError, TypeError):
            assume(False)
    else:
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
    check(body)


# ------------------------------------------------------------------ metamorphic: key order does not matter


def _shuffle(draw, value):
    if isinstance(value, dict):
        items = list(value.items())
        order = draw(st.permutations(range(len(items))))
        return {items[i][0]: _shuffle(draw, items[i][1]) for i in order}
    if isinstance(value, list):
        return [_shuffle(draw, v) for v in value]
    return value


def _normal(data):
    """Order-insensitive view of to_dict(): outputs and sections as sorted lists."""
    data = json.loads(json.dumps(data))
    for key in ("outputs",):
        if key in data:
            data[key] = sorted(data[key], key=json.dumps)
    details = data.get("details") or {}
    for key in ("files", "covers", "sections"):
        if key in details:
            details[key] = sorted(details[key], key=json.dumps)
    return data


@SETTINGS
@given(st.data(), st.booleans())
def test_key_order_is_irrelevant(data, xml):
    document = data.draw(st.sampled_from(DOCUMENTS))
    shuffled = _shuffle(data.draw, document)
    if xml:
        original_body, shuffled_body = to_xml(document), to_xml(shuffled)
    else:
        original_body, shuffled_body = json.dumps(document).encode(), json.dumps(shuffled).encode()
    original = check(original_body)
    assume(original is not None)
    assert _normal(check(shuffled_body)) == _normal(original)
