"""Load test: many distinct SmartCover callbacks over real HTTP, then check none was lost.

Not a test: it prints figures. What runs is the ``ci-callback serve --local`` machinery:
an embedded S3-compatible COS (``LocalCOS``) and ``localdemo.make_http_server`` serving
``handle`` over HTTP on 127.0.0.1, either in this process (``--mode inprocess``, the
default) or as a child ``ci-callback serve --local --port 0`` (``--mode subprocess``, so
the load generator does not share the server's GIL).

Every callback is ``events/apigw-smartcover-xml.json``'s body with a fresh JobId; its five
covers are seeded once (all jobs tag the same covers). ``--concurrency`` client threads
POST them with keep-alive ``http.client`` connections. Printed: throughput (req/s), p50 /
p90 / p99 / max latency, the status-code histogram (with the response ``status``), COS
requests per callback (in-process mode), and whether every job's index object exists.

    .venv/bin/python bench/load.py                         # 2,000 callbacks, concurrency 16
    .venv/bin/python bench/load.py --count 500 --concurrency 4 --mode subprocess

Exit status: 0 when every answer was 2xx and every index object is present, else 1.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "handler"), str(ROOT / "dev")]

BUCKET = "examplebucket-1250000000"
REGION = "ap-guangzhou"
EVENT = ROOT / "events" / "apigw-smartcover-xml.json"
TEMPLATE_JOB_ID = "j1a2b3c4d5e6f11ee9f0a525400000001"
INPUT_KEY = "videos/launch day.mp4"
COVERS = [f"covers/launch-{i}.jpg" for i in range(5)]
INDEX_PREFIX = f"ci-index/{BUCKET}/{INPUT_KEY}/"


def cos_client(host: str, port: int) -> Any:
    from qcloud_cos import CosConfig, CosS3Client

    config = CosConfig(Region=REGION, SecretId="bench", SecretKey="bench", Scheme="http", IP=host, Port=port,
                       PoolMaxSize=8)
    return CosS3Client(config, retry=0)


def seed(client: Any) -> None:
    for key in COVERS:
        client.put_object(Bucket=BUCKET, Key=key, Body=b"cover")


def indexed_job_ids(client: Any) -> set:
    found, marker = set(), ""
    while True:
        page = client.list_objects(Bucket=BUCKET, Prefix=INDEX_PREFIX, Marker=marker, MaxKeys=1000)
        contents = page.get("Contents") or []
        contents = [contents] if isinstance(contents, dict) else contents
        for item in contents:
            name = item["Key"][len(INDEX_PREFIX):]
            if name.startswith("job-") and name.endswith(".json"):
                found.add(name[4:-5])
        if str(page.get("IsTruncated", "false")).lower() != "true" or not contents:
            return found
        marker = page.get("NextMarker") or contents[-1]["Key"]


# ---------------------------------------------------------------- the server under load


class InProcess:
    """LocalCOS + make_http_server on port 0, in this process."""

    def __init__(self, token: str) -> None:
        os.environ.setdefault("TENCENTCLOUD_SECRETID", "AKIDbenchlocal")
        os.environ.setdefault("TENCENTCLOUD_SECRETKEY", "benchlocalkey")
        from ci_callback import log
        from ci_callback_dev.localcos import LocalCOS
        from ci_callback_dev.localdemo import local_settings, make_http_server

        log.set_stream(open(os.devnull, "w"))  # one JSON line per callback would dominate the run
        self.cos = LocalCOS().start()
        self.cos.create_bucket(BUCKET)
        self.server = make_http_server(local_settings(self.cos.endpoint, token, region=REGION))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.host, self.port = self.server.server_address[:2]
        self.client = self.cos.client(REGION)

    def cos_requests(self) -> int | None:
        return self.cos.request_count

    def reset_cos_requests(self) -> None:
        self.cos.reset_requests()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.cos.stop()


class Subprocess:
    """``ci-callback serve --local --port 0`` as a child process."""

    def __init__(self, token: str) -> None:
        command = [sys.executable, "-m", "ci_callback_dev.cli", "serve", "--local", "--port", "0", "--token", token,
                   "--bucket", BUCKET]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "handler"), str(ROOT / "dev")]), CI_CALLBACK_LOG_LEVEL="ERROR")
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                        env=env, cwd=str(ROOT))
        lines: list[str] = []
        deadline = time.monotonic() + 60
        serving = cos = None
        while (serving is None or cos is None) and time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            lines.append(line)
            serving = serving or re.search(r"serving on http://([\d.]+):(\d+)/", line)
            cos = cos or re.search(r"embedded COS at http://([\d.]+):(\d+)", line)
        if serving is None or cos is None:
            self.process.kill()
            raise SystemExit("ci-callback serve did not start:\n" + "".join(lines))
        threading.Thread(target=self.process.stderr.read, daemon=True).start()  # keep draining
        self.host, self.port = serving.group(1), int(serving.group(2))
        self.client = cos_client(cos.group(1), int(cos.group(2)))

    def cos_requests(self) -> int | None:
        return None

    def reset_cos_requests(self) -> None:
        pass

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# ---------------------------------------------------------------- the load


def run_load(host: str, port: int, token: str, bodies: list[tuple[str, bytes]], concurrency: int,
             timeout: float) -> tuple[float, list[tuple[str, int, str, float]], list[str]]:
    work: queue.Queue[tuple[str, bytes]] = queue.Queue()
    for item in bodies:
        work.put(item)
    results: list[tuple[str, int, str, float]] = []
    errors: list[str] = []
    lock = threading.Lock()
    path = f"/?token={quote(token)}"
    start = threading.Barrier(concurrency + 1)

    def worker() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        start.wait()
        while True:
            try:
                job_id, body = work.get_nowait()
            except queue.Empty:
                break
            began = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers={"Content-Type": "application/xml"})
                response = connection.getresponse()
                data = response.read()
                status = response.status
                outcome = json.loads(data).get("status", "?")
            except Exception as exc:  # counted, the connection is renewed
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=timeout)
                with lock:
                    errors.append(f"{job_id}: {type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - began
            with lock:
                results.append((job_id, status, outcome, elapsed))
        connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, results, errors


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="callbacks to send, each with its own JobId")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads")
    parser.add_argument("--mode", choices=("inprocess", "subprocess"), default="inprocess")
    parser.add_argument("--timeout", type=float, default=30.0, help="client socket timeout in seconds")
    args = parser.parse_args(argv)
    if args.count < 1 or args.concurrency < 1:
        parser.error("--count and --concurrency must be positive")

    template = json.loads(EVENT.read_text(encoding="utf-8"))["body"]
    assert TEMPLATE_JOB_ID in template and INPUT_KEY in template, "events/apigw-smartcover-xml.json changed"
    run = secrets.token_hex(4)
    bodies = []
    for n in range(args.count):
        job_id = f"j{run}{n:024x}"
        bodies.append((job_id, template.replace(TEMPLATE_JOB_ID, job_id).encode("utf-8")))

    token = secrets.token_urlsafe(18)
    target = InProcess(token) if args.mode == "inprocess" else Subprocess(token)
    try:
        seed(target.client)
        # One warm-up callback (SDK import, first connections), not counted.
        warm = template.replace(TEMPLATE_JOB_ID, f"j{run}warmup").encode("utf-8")
        run_load(target.host, target.port, token, [("warm-up", warm)], 1, args.timeout)
        target.reset_cos_requests()

        wall, results, errors = run_load(target.host, target.port, token, bodies, args.concurrency, args.timeout)
        cos_requests = target.cos_requests()
        present = indexed_job_ids(target.client)
    finally:
        target.close()

    latencies = sorted(r[3] * 1000 for r in results)
    histogram = collections.Counter((status, outcome) for _, status, outcome, _ in results)
    expected = {job_id for job_id, _ in bodies}
    lost = sorted(expected - present)
    ok = [r for r in results if 200 <= r[1] < 300]

    print(f"ci-callback load: {args.count} SmartCover callbacks, concurrency {args.concurrency}, "
          f"mode {args.mode}, Python {sys.version.split()[0]}")
    print(f"  wall time      {wall:8.2f} s")
    print(f"  throughput     {len(results) / wall:8.1f} req/s")
    print(f"  latency p50    {percentile(latencies, 50):8.1f} ms")
    print(f"  latency p90    {percentile(latencies, 90):8.1f} ms")
    print(f"  latency p99    {percentile(latencies, 99):8.1f} ms")
    print(f"  latency max    {(latencies[-1] if latencies else float('nan')):8.1f} ms")
    if cos_requests is not None and results:
        print(f"  COS requests   {cos_requests} ({cos_requests / len(results):.1f} per callback)")
    print("  status codes")
    for (status, outcome), count in sorted(histogram.items()):
        print(f"    {status} {outcome:<10} {count:6d}")
    if errors:
        print(f"    transport errors {len(errors)} (first: {errors[0]})")
    print(f"  index objects  {len(expected & present)}/{len(expected)} present; lost: {len(lost)}"
          + (f" (first: {lost[:3]})" if lost else ""))
    success = not errors and len(ok) == args.count and not lost
    print("  verdict        " + ("OK: every callback answered 2xx and indexed" if success else "FAILED"))
    return 0 if success else 1


if __name__ == "__main__":
    sys.exit(main())
