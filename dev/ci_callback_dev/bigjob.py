"""Large job callbacks (benchmarks, tests, the demo): Segment/Snapshot-style bodies with N outputs.

``segment_body(n, fmt)`` is a TaskFinish callback whose MediaResult lists N ``ObjectName``
entries under one ``ObjectPrefix`` (how Segment and Snapshot jobs report their files);
``largest_body(fmt, limit)`` grows N until the body is as close to ``limit`` bytes (the
largest accepted body, 1 MiB by default) as it gets without passing it.

    python -m ci_callback_dev.bigjob xml 1048576 > /tmp/big.xml   # write one to look at
"""

from __future__ import annotations

import json
import sys
from typing import Any

BUCKET = "examplebucket-1250000000"
REGION = "ap-guangzhou"
PREFIX = "hls/long-"


def names(n: int) -> list[str]:
    # 6-second HLS segments: hls/long-show-00000.ts … (five digits up to 99,999 outputs)
    return [f"show-{i:05d}.ts" for i in range(n)]


def segment_body(n: int, fmt: str = "xml", job_id: str = "jgrowth0000000000000000000000000000") -> bytes:
    if fmt == "json":
        document: dict[str, Any] = {
            "EventName": "TaskFinish",
            "JobsDetail": [{
                "Code": "Success", "Message": "success", "JobId": job_id, "Tag": "Segment", "State": "Success",
                "CreationTime": "2026-11-20T10:10:00+0800", "StartTime": "2026-11-20T10:10:01+0800",
                "EndTime": "2026-11-20T13:10:30+0800",
                "Input": {"BucketId": BUCKET, "Object": "videos/long-show.mp4", "Region": REGION},
                "Operation": {
                    "Segment": {"Format": "hls", "Duration": "6"},
                    "Output": {"Bucket": BUCKET, "Region": REGION, "Object": PREFIX + "${number}"},
                    "MediaResult": {"OutputFile": {"Bucket": BUCKET, "Region": REGION, "ObjectPrefix": PREFIX,
                                                   "ObjectName": names(n)}},
                },
            }],
        }
        return json.dumps(document, indent=1).encode("utf-8")
    head = (
        "<Response>\n  <EventName>TaskFinish</EventName>\n  <JobsDetail>\n"
        f"    <Code>Success</Code>\n    <Message>success</Message>\n    <JobId>{job_id}</JobId>\n"
        "    <Tag>Segment</Tag>\n    <State>Success</State>\n"
        "    <CreationTime>2026-11-20T10:10:00+0800</CreationTime>\n"
        "    <StartTime>2026-11-20T10:10:01+0800</StartTime>\n    <EndTime>2026-11-20T13:10:30+0800</EndTime>\n"
        f"    <Input><BucketId>{BUCKET}</BucketId><Object>videos/long-show.mp4</Object><Region>{REGION}</Region></Input>\n"
        "    <Operation>\n      <Segment><Format>hls</Format><Duration>6</Duration></Segment>\n"
        f"      <Output><Bucket>{BUCKET}</Bucket><Region>{REGION}</Region><Object>{PREFIX}${{number}}</Object></Output>\n"
        "      <MediaResult>\n        <OutputFile>\n"
        f"          <Bucket>{BUCKET}</Bucket>\n          <Region>{REGION}</Region>\n"
        f"          <ObjectPrefix>{PREFIX}</ObjectPrefix>\n"
    )
    items = "".join(f"    <ObjectName>{name}</ObjectName>\n" for name in names(n))
    tail = "        </OutputFile>\n      </MediaResult>\n    </Operation>\n  </JobsDetail>\n</Response>\n"
    return (head + items + tail).encode("utf-8")


def largest_body(fmt: str = "xml", limit: int = 1024 * 1024) -> tuple[int, bytes]:
    """(N, body): the most outputs whose body still fits in LIMIT bytes."""
    low, high = 1, 200_000
    while low < high:  # bodies grow monotonically with N
        mid = (low + high + 1) // 2
        if len(segment_body(mid, fmt)) <= limit:
            low = mid
        else:
            high = mid - 1
    return low, segment_body(low, fmt)


def output_keys(n: int) -> list[str]:
    return [PREFIX + name for name in names(n)]


if __name__ == "__main__":
    fmt = sys.argv[1] if len(sys.argv) > 1 else "xml"
    count, body = largest_body(fmt, int(sys.argv[2]) if len(sys.argv) > 2 else 1024 * 1024)
    sys.stderr.write(f"{count} outputs, {len(body)} bytes\n")
    sys.stdout.buffer.write(body)
