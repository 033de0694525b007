"""Issue 13 — see what happened: ``inspect``, ``report`` (terminal, JSON, HTML) and progress.

After a mixed run of real callbacks on the local COS (processed, failed, duplicate,
unfinished after a COS outage, in flight under a live lease, waiting for CI's final
callback), each story must be told right by the real CLI, and the report must count
what was sent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from conftest import BUCKET, REGION, ROOT, TOKEN
from observe_scenario import Mixed, mixed_run

# A non-TTY run may print newlines and nothing else below 0x20 (no ESC, no CR, no BS…).
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\x9b]")
ARTIFACTS = ROOT / "tests" / "out"


@pytest.fixture(scope="module")
def world():
    """One local COS with the mixed run in it, shared by the read-only tests of this module."""
    from ci_callback import log
    from ci_callback.settings import Settings
    from ci_callback_dev.localcos import LocalCOS
    from fake_ci import FakeCI

    with pytest.MonkeyPatch.context() as mp, LocalCOS() as cos, \
            FakeCI(secret_id="AKIDlocaltest", secret_key="localtestkey") as ci:
        for name, value in {"TENCENTCLOUD_SECRETID": "AKIDlocaltest", "TENCENTCLOUD_SECRETKEY": "localtestkey",
                            "CI_CALLBACK_COS_ENDPOINT": cos.endpoint, "CI_CALLBACK_TOKENS": TOKEN,
                            "TENCENTCLOUD_REGION": REGION}.items():
            mp.setenv(name, value)
        cos.create_bucket(BUCKET)
        log.set_stream(open(os.devnull, "w"))
        settings = Settings(tokens=(TOKEN,), cos_endpoint=cos.endpoint, region=REGION)
        run = mixed_run(cos, settings, ci)
        log.set_stream(None)
        yield cos, settings, run


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    from ci_callback import log
    from ci_callback_dev.cli import main

    capsys.readouterr()
    try:
        code = main(list(argv))
    finally:
        log.set_stream(None)  # main points the log at this test's captured stderr
    out, err = capsys.readouterr()
    return code, out, err


def inspect_json(capsys, callback_id: str) -> dict[str, Any]:
    code, out, _ = cli(capsys, "inspect", callback_id, "--bucket", BUCKET, "--json")
    assert code == 0
    return json.loads(out)


# ---------------------------------------------------------------- inspect


def test_the_scenario_answered_as_expected(world):
    _, _, run = world
    assert run.statuses[run.unfinished] == [503]  # COS failed: CI is asked to retry
    assert run.statuses[run.duplicate] == [200, 200]
    assert run.statuses[run.recovered] == [200]


@pytest.mark.parametrize("which, outcome, line", [
    ("processed", "processed", "processed"),
    ("failed", "failed", "failed: InvalidArgument the input media has no video stream"),
    ("duplicate", "processed", "processed"),
    ("recovered", "processed", "processed"),
    ("unfinished", "unfinished", "seen but not finished"),
    ("never", "never seen", "never seen"),
])
def test_inspect_verdicts(world, capsys, which, outcome, line):
    run: Mixed = world[2]
    story = inspect_json(capsys, getattr(run, which))
    assert story["verdict"]["outcome"] == outcome
    assert story["verdict"]["line"] == line


def test_inspect_counts_an_identical_redelivery(world, capsys):
    story = inspect_json(capsys, world[2].duplicate)
    deliveries = story["deliveries"]
    assert [(d["request_id"], d["source"], d["recorded"]) for d in deliveries] == [
        ("req-dup-1", "url", True), ("req-dup-2", "url", True)]
    assert deliveries[0]["sha256"] == deliveries[1]["sha256"]  # identical bodies: one archived object
    assert len(story["archive"]) == 1 and deliveries[0]["archive_key"] == story["archive"][0]["key"]
    done = [m for m in story["markers"] if m["name"] == "done"]
    assert done[0]["body"]["request_id"] == "req-dup-1" and done[0]["body"]["source"] == "url"
    assert story["notify"] == {"ran": False, "why": "not configured, switched off, or nothing processed"}


def test_inspect_shows_the_sweep_as_the_source(world, capsys):
    run: Mixed = world[2]
    story = inspect_json(capsys, run.recovered)
    request = f"sweep-1:{run.recovered}"  # the sweep's request id, per job
    assert [(d["source"], d["request_id"]) for d in story["deliveries"]] == [("reconcile", request)]
    code, out, _ = cli(capsys, "inspect", run.recovered, "--bucket", BUCKET)
    assert re.search(rf"1\. .* UTC  reconcile\s+Success\s+sha256 [0-9a-f]{{16}}  request {request}", out), out


def test_inspect_processing_is_a_live_lease(world, capsys):
    story = inspect_json(capsys, world[2].processing)
    assert story["verdict"]["outcome"] == "processing"
    assert story["verdict"]["line"].startswith("processing (lease-1 held until ")
    assert story["verdict"]["fix"] is None


def test_inspect_waiting_for_the_final_callback_points_at_reconcile(world, capsys):
    story = inspect_json(capsys, world[2].waiting)
    assert story["verdict"]["outcome"] == "unfinished"
    assert "final callback never arrived (last state Running)" in story["verdict"]["line"]
    assert story["verdict"]["fix"] == "ci-callback reconcile"
    assert story["tag"] == "Transcode"


def test_inspect_never_seen_suggests_the_sweep(world, capsys):
    story = inspect_json(capsys, world[2].never)
    assert story["deliveries"] == [] and story["markers"] == [] and story["failure"] is None
    assert story["verdict"]["fix"] == "ci-callback reconcile"


def test_inspect_tells_the_story_in_order(world, capsys):
    code, out, _ = cli(capsys, "inspect", world[2].processed, "--bucket", BUCKET)
    assert code == 0
    sections = ["Deliveries (1)", "Markers", "Index and failure records", "Outputs (4)", "Notify:", "Verdict: processed"]
    positions = [out.index(s) for s in sections]
    assert positions == sorted(positions)
    assert out.rstrip().splitlines()[-1] == "Verdict: processed"
    assert re.search(r"Success\s+done\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", out)
    assert "job index          found" in out
    assert "failure record     absent" in out


def test_inspect_explains_each_output(world, capsys):
    story = inspect_json(capsys, world[2].processed)
    outputs = {o["key"]: o for o in story["outputs"]}
    assert outputs["out/ok-0.jpg"]["status"] == "tagged"
    assert outputs["out/ok-1.jpg"]["status"] == "tagged"
    full = outputs["out/full-tags.jpg"]
    assert full["status"] == "untagged" and "already has 10 tags" in full["why"]
    assert set(full["missing"]) == {"ci-job-id", "ci-tag", "ci-source"}
    assert outputs["out/gone.jpg"]["status"] == "missing"
    assert "does not exist" in outputs["out/gone.jpg"]["why"]


def test_inspect_failed_reads_cis_code_from_the_failure_record_and_body(world, capsys):
    story = inspect_json(capsys, world[2].failed)
    assert story["failure"]["code"] == "InvalidArgument"
    assert [d["what"] for d in story["index"] if d["found"]] == ["failure record"]
    assert story["outputs"] == []


def test_inspect_unknown_id_kind_defaults_to_job_and_json_has_every_section(world, capsys):
    story = inspect_json(capsys, world[2].never)
    assert story["kind"] == "job"
    for key in ("deliveries", "markers", "continuations", "index", "failure", "outputs", "notify", "verdict"):
        assert key in story


# ---------------------------------------------------------------- report


def _report_json(capsys, *extra: str) -> dict[str, Any]:
    code, out, _ = cli(capsys, "report", "--bucket", BUCKET, "--since", "1h", "--json", "--quiet", *extra)
    assert code == 0
    return json.loads(out)


def test_report_counts_match_what_was_sent(world, capsys):
    data = _report_json(capsys)
    run: Mixed = world[2]
    assert data["callbacks"] == 7
    assert data["outcomes"] == {"processed": 3, "failed": 1, "processing": 1, "unfinished": 2}
    # 8 deliveries: one each, plus CI's identical retry of the duplicate job.
    assert (data["deliveries"], data["duplicates"]) == (8, 1)
    assert data["delivery_sources"] == {"reconcile": 1, "url": 7}
    assert data["recovered_by_sweep"] == [run.recovered]
    [summary] = data["sweeps"]  # the sweep's own summary document
    assert (summary["request_id"], summary["listed"], summary["processed"], summary["complete"]) == (
        "sweep-1", 1, 1, True)
    assert data["callbacks_without_delivery_records"] == 0
    by_tag = {(r["kind"], r["tag"]): r["outcomes"] for r in data["by_kind_tag"]}
    assert by_tag[("job", "SmartCover")] == {"processed": 1}
    assert by_tag[("job", "Snapshot")] == {"processed": 2}
    assert by_tag[("job", "Transcode")] == {"failed": 1, "processing": 1, "unfinished": 2}
    assert data["failures"] == [{"tag": "Transcode", "code": "InvalidArgument",
                                 "message": "the input media has no video stream", "count": 1,
                                 "ids": [world[2].failed]}]
    assert {r["id"] for r in data["unfinished"]} == {world[2].unfinished, world[2].processing, world[2].waiting}
    # Processed and failed callbacks have a delay (end time 5 s before sending → done marker).
    delay = data["delay_seconds"]
    assert delay["count"] == 4
    assert 4 <= delay["p50"] <= 60 and delay["p50"] <= delay["p90"] <= delay["p99"]


def test_report_window_excludes_what_is_outside(world, capsys):
    until = (datetime.now(timezone.utc) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    data = _report_json(capsys, "--until", until)
    assert data["callbacks"] == 0


def test_report_in_a_pipe_prints_tables_and_no_control_characters(world, capsys):
    code, out, err = cli(capsys, "report", "--bucket", BUCKET, "--since", "24h")
    assert code == 0
    for title in ("Callbacks by outcome", "By kind and Tag", "Deliveries by source", "Failures", "Unfinished",
                  "Processing delay"):
        assert title in out
    assert "InvalidArgument" in out and "the input media has no video stream" in out
    assert not CONTROL.search(out), repr(CONTROL.search(out))
    assert not CONTROL.search(err)
    assert "reading callbacks: done, 7/7 (100%)" in err  # the plain progress line


def test_report_percentiles_nearest_rank():
    from ci_callback_dev.report import percentile

    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 99)) == (50.0, 90.0, 99.0)
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0


def test_report_durations_and_times():
    from ci_callback_dev.report import parse_when

    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_when("24h", now) == now - timedelta(hours=1 * 24)
    assert parse_when("90m", now) == now - timedelta(minutes=90)
    assert parse_when("2026-11-30T08:00:00+08:00", now) == datetime(2026, 11, 30, 0, 0, tzinfo=timezone.utc)
    assert parse_when("2026-11-30", now) == datetime(2026, 11, 30, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        parse_when("yesterday", now)


# ---------------------------------------------------------------- the HTML page in a real browser


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless Chromium on this machine (make test installs the Debian package where apt-get works)")


def _headless(browser: str, *args: str, profile: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=90,
    )


def test_report_html_renders_in_headless_chromium(world, capsys, tmp_path):
    browser = _chromium()
    page = tmp_path / "report.html"
    code, _, err = cli(capsys, "report", "--bucket", BUCKET, "--since", "1h", "--html", str(page), "--quiet")
    assert code == 0 and f"wrote {page}" in err
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html  # self-contained: nothing to fetch

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        dom = _headless(browser, "--dump-dom", page.as_uri(), profile=profile)
        assert dom.returncode == 0, dom.stderr[-2000:]
        tables = re.findall(r"<table>.*?</table>", dom.stdout, re.S)
        assert len(tables) == 7 and "Sweeps" in dom.stdout
        first = re.sub(r"<[^>]+>", " ", tables[0]).split()
        assert first[-8:] == ["7", "3", "1", "1", "2", "8", "1", "1"]
        assert len(re.findall(r'<rect class="bar ', dom.stdout)) >= 1
        assert "InvalidArgument" in dom.stdout

        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "report.png"
        if shot.exists():
            shot.unlink()
        result = _headless(browser, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri(), profile=profile)
        assert result.returncode == 0, result.stderr[-2000:]
        assert shot.exists() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        shutil.rmtree(profile, ignore_errors=True)


# ---------------------------------------------------------------- progress


class _Tty:
    """A stream that says it is a terminal (what rich checks before drawing a live bar)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        raise OSError("not a real terminal")

    @property
    def text(self) -> str:
        return "".join(self.parts)


def test_progress_plain_lines_have_done_of_known_rate_and_time_left():
    import io

    from ci_callback_dev.progress import Progress

    ticks = iter(float(t) for t in range(100))
    stream = io.StringIO()
    progress = Progress(stream, live=False, interval=1.0, clock=lambda: next(ticks))
    progress.start("replaying", 10)
    for _ in range(4):
        progress.advance()
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("replaying: 1/10 (10%), ")
    assert any("left" in line for line in lines)
    assert lines[-1].startswith("replaying: done, 4/10 (40%)")
    assert not CONTROL.search(stream.getvalue())


def test_progress_on_a_terminal_is_a_live_bar():
    from ci_callback_dev.progress import Progress

    tty = _Tty()
    with Progress(tty, live=True) as progress:  # type: ignore[arg-type]
        progress.start("reading callbacks", 3)
        for _ in range(3):
            progress.advance()
    assert "\x1b[" in tty.text  # cursor control and colour: a live display
    assert "3/3" in tty.text and "reading callbacks" in tty.text


def test_progress_is_live_only_when_stdout_and_stderr_are_terminals():
    import io

    from ci_callback_dev.progress import interactive

    assert interactive(_Tty(), _Tty()) is True  # type: ignore[arg-type]
    assert interactive(io.StringIO(), _Tty()) is False  # type: ignore[arg-type]
    assert interactive(_Tty(), io.StringIO()) is False  # type: ignore[arg-type]


def test_ctrl_c_finishes_the_item_in_flight_then_stops():
    import signal

    from ci_callback_dev.progress import Progress
    from ci_callback_dev.runs import each_with_progress

    done: list[str] = []

    def work(item: str) -> list[str]:
        if item == "b":
            os.kill(os.getpid(), signal.SIGINT)  # arrives while "b" is in flight
        done.append(item)
        return [item]

    run = each_with_progress(["a", "b", "c", "d"], work, Progress.quiet())
    assert run.interrupted and run.results == ["a", "b"] and done == ["a", "b"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_report_on_a_real_terminal_draws_progress_and_a_pipe_does_not(world, tmp_path):
    """The real command in a pseudo-terminal (live bar) and in a pipe (plain lines)."""
    import pty

    cos = world[0]
    env = {**os.environ, "CI_CALLBACK_COS_ENDPOINT": cos.endpoint, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "dev"), str(ROOT / "handler")]), "TERM": "xterm-256color", "COLUMNS": "120"}
    command = [sys.executable, "-m", "ci_callback_dev.cli", "report", "--bucket", BUCKET, "--since", "1h"]
    piped = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert not CONTROL.search(piped.stdout) and not CONTROL.search(piped.stderr)
    assert "reading callbacks: done" in piped.stderr

    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(command, env=env, stdin=terminal, stdout=terminal, stderr=terminal)
        os.close(terminal)
        chunks = []
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=120) == 0
    finally:
        os.close(controller)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[" in screen  # the live bar (and colour) on a terminal
    assert "reading callbacks" in screen and "Callbacks by outcome" in screen
    assert "reading callbacks: done" not in screen  # no plain lines there


def test_rich_is_a_dev_dependency_only():
    """Nothing new ships in the layer: rich is in the dev requirements, not the runtime ones."""
    runtime = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert "rich" not in runtime.lower()
    assert "rich==" in (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    for path in (ROOT / "handler" / "ci_callback").glob("*.py"):
        assert not re.search(r"^\s*(from|import) rich\b", path.read_text(encoding="utf-8"), re.M), path


@pytest.mark.parametrize("apt", ["absent", "failing"])
def test_make_installs_the_browser_or_says_why_not(tmp_path, apt):
    """``make test``'s browser step never fails the build: without chromium it installs the
    Debian package where apt-get works, and otherwise says the browser test will skip."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id", "env"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    if apt == "failing":
        fake = bin_dir / "apt-get"
        fake.write_text('#!/bin/sh\necho "$@" >> "${0%/*}/apt-calls"\nexit 100\n', encoding="utf-8")
        fake.chmod(0o755)
        (bin_dir / "sudo").symlink_to(shutil.which("true") or "/bin/true")
    result = subprocess.run([make, "-s", "-C", str(ROOT), "browser", "SHELL=/bin/sh"], capture_output=True, text=True,
                            env={"PATH": str(bin_dir), "HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 0, result.stderr
    if apt == "absent":
        assert "no chromium and no apt-get; the HTML report browser test will be skipped" in result.stdout
    else:
        assert "could not install chromium; the HTML report browser test will be skipped" in result.stdout
        calls = (bin_dir / "apt-calls").read_text(encoding="utf-8")
        assert "install -y -qq chromium" in calls and "update -qq" in calls
