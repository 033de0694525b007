"""``ci-callback``: parse bodies, invoke the handler on events, run the local demo."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .events import with_token


def _read(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    return Path(source).read_bytes()


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def cmd_parse(args: argparse.Namespace) -> int:
    from ci_callback.errors import InvalidCallback
    from ci_callback.model.parse import parse_callback

    try:
        body = _read(args.file)
    except OSError as exc:
        sys.stderr.write(f"ci-callback: cannot read {args.file}: {exc.strerror}\n")
        return 2
    try:
        callback = parse_callback(body, args.content_type)
    except InvalidCallback as exc:
        sys.stderr.write(f"ci-callback: not a CI callback: {exc}\n")
        return 2
    _print_json(callback.to_dict())
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    from ci_callback.app import handle

    try:
        event = json.loads(_read(args.event))
        context = json.loads(_read(args.context)) if args.context else {"request_id": "local-invoke", "time_limit_in_ms": 3000}
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"ci-callback: cannot read the event: {exc}\n")
        return 2
    if args.token and isinstance(event, dict):
        event = with_token(event, args.token)
    _print_json(handle(event, context))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .localdemo import run_demo

    return run_demo(args.events)


def cmd_serve(args: argparse.Namespace) -> int:
    if not args.local:
        sys.stderr.write("ci-callback: only --local is supported (it embeds a local COS)\n")
        return 2
    from .localdemo import run_serve

    return run_serve(args.port, args.token, args.bucket)


def _parse_time(value: str | None):  # type: ignore[no-untyped-def]
    from ci_callback.times import parse_time

    if value is None:
        return None
    stamp = parse_time(value if "T" in value or " " in value else value + "T00:00:00+08:00")
    if stamp is None:
        raise SystemExit(f"ci-callback: cannot read the time {value!r} (use 2026-11-20T10:00:00+08:00)")
    return stamp


def cmd_replay(args: argparse.Namespace) -> int:
    from ci_callback.adapters.services import Services
    from ci_callback.durable.replay import select
    from ci_callback.settings import Settings

    from .progress import Progress
    from .runs import collect_keys, replay_keys

    settings = Settings.from_env()
    storage = Services.from_env(settings).storage
    progress = Progress(enabled=not args.quiet)
    try:
        keys = collect_keys(select(storage, args.bucket, settings, args.prefix, _parse_time(args.since),
                                   _parse_time(args.until), args.failures), progress)
    except KeyboardInterrupt:  # only listing so far: nothing was replayed
        progress.finish()
        sys.stderr.write("ci-callback: interrupted while selecting; nothing replayed\n")
        return 130
    if args.dry_run:
        progress.finish()
        _print_json({"selected": keys})
        return 0
    run = replay_keys(storage, args.bucket, settings, keys, args.force, progress)
    _print_json([r.__dict__ for r in run.results])
    if run.interrupted:
        sys.stderr.write(f"ci-callback: stopped after {len(run.results)} of {run.selected}; the same command "
                         "continues (what is done answers duplicate)\n")
        return 130
    return 0 if all(200 <= r.status < 300 for r in run.results) else 1


def cmd_reconcile(args: argparse.Namespace) -> int:
    """The timer's sweep, from a laptop: the same entry, cursor and summary as on SCF."""
    from datetime import datetime, timezone

    from .progress import Progress
    from .runs import reconcile_once

    spec = args.spec or ""
    if spec and not spec.lstrip().startswith("{"):
        try:
            spec = _read(spec).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            sys.stderr.write(f"ci-callback: cannot read the spec {args.spec}: {exc}\n")
            return 2
    event = {"Type": "Timer", "TriggerName": "ci-callback-cli", "Message": spec,
             "Time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    context: dict = {"request_id": f"cli-{os.getpid()}"}
    if args.time_limit:
        context["time_limit_in_ms"] = int(args.time_limit * 1000)
    result, interrupted = reconcile_once(event, context, Progress(enabled=not args.quiet))
    _print_json(result)
    if interrupted:
        sys.stderr.write("ci-callback: stopped; the sweep kept its cursor, the same command resumes it\n")
        return 130
    if result.get("status") == "rejected":
        return 2
    return 0 if result.get("ok") else 1


def _bucket_view(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ci_callback.adapters.services import Services
    from ci_callback.settings import Settings

    from .records import Bucket

    settings = Settings.from_env()
    return Bucket.from_settings(Services.from_env(settings).storage, args.bucket, settings)


def cmd_inspect(args: argparse.Namespace) -> int:
    from .story import gather, render

    try:
        story = gather(_bucket_view(args), args.id, args.kind)
    except KeyboardInterrupt:  # read-only: nothing to clean up
        sys.stderr.write("ci-callback: interrupted\n")
        return 130
    if args.json:
        _print_json(story.to_dict())
    else:
        sys.stdout.write(render(story))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from .progress import Progress
    from .report import build, parse_when, render_terminal

    now = datetime.now(timezone.utc)
    try:
        since = parse_when(args.since, now)
        until = parse_when(args.until, now) or now
    except ValueError as exc:
        sys.stderr.write(f"ci-callback: {exc}\n")
        return 2
    assert since is not None
    progress = Progress(enabled=not args.quiet)
    try:
        with progress:
            summary = build(_bucket_view(args), since, until, progress)
    except KeyboardInterrupt:  # read-only, and the page is written only at the end
        sys.stderr.write("ci-callback: interrupted; nothing written\n")
        return 130
    if args.html:
        from .report_html import render as render_html

        _write_atomically(Path(args.html), render_html(summary))
    if args.json:
        _print_json(summary.to_dict())
    else:
        render_terminal(summary, sys.stdout)
    if args.html:
        sys.stderr.write(f"ci-callback: wrote {args.html}\n")
    return 0


def _write_atomically(path: Path, text: str) -> None:
    """Write beside the target, then rename: an interrupted run never leaves half a page."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def cmd_check_deploy(args: argparse.Namespace) -> int:
    from .deploycheck import main as check_main

    return check_main([args.action, "--stage", args.stage] + (["--root", args.root] if args.root else []))


def _spec_text(value: str | None) -> str | None:
    """--spec: JSON text or a file; default CI_CALLBACK_RECONCILE_SPEC (.env is read by make)."""
    if value is None:
        from ci_callback.settings import Settings

        return Settings.from_env().reconcile_spec
    if value.lstrip().startswith("{"):
        return value
    try:
        return _read(value).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"ci-callback: cannot read the spec {value}: {exc}") from None


def _chosen(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Targets named by --queue/--pic-queue/--workflow (with --bucket/--region), else none."""
    from .connect import Target

    named = [("queue", q) for q in args.queue] + [("pic_queue", q) for q in args.pic_queue] + \
        [("workflow", w) for w in args.workflow]
    if named and not (args.bucket and args.region):
        raise SystemExit("ci-callback: --queue/--pic-queue/--workflow need --bucket and --region")
    return [Target(kind, args.bucket, args.region, ident) for kind, ident in named]


def _default_url(args: argparse.Namespace) -> str:
    """--url, else the Function URL `make deploy` recorded for the stage (.deploy/<stage>.json "url")."""
    if args.url:
        return str(args.url)
    from .deploycheck import project_root, state_path

    try:
        url = json.loads(state_path(project_root(), args.stage).read_text(encoding="utf-8")).get("url")
    except (OSError, ValueError, AttributeError):
        url = None
    if not url:
        raise SystemExit(f"ci-callback: no --url and none recorded for stage {args.stage}; pass the Function URL "
                         f"(scf info --stage {args.stage})")
    return str(url)


def _load_env_file(path: str | None) -> None:
    """KEY=VALUE lines of .env for variables not already set (the deploy reads the same file)."""
    if not path or not Path(path).is_file():
        return
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = (part.strip() for part in line.removeprefix("export ").split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key, value)


def _quiet_sdk() -> None:
    import logging

    # The SDK logs request bodies at INFO, and a NotifyConfig body holds the token.
    logging.getLogger("qcloud_cos").setLevel(logging.WARNING)


def cmd_connect(args: argparse.Namespace) -> int:
    from ci_callback.errors import InvalidSweepSpec
    from ci_callback.reconcile.spec import parse_spec
    from ci_callback.settings import Settings

    from . import connect

    _quiet_sdk()
    _load_env_file(args.env_file)
    settings = Settings.from_env()
    chosen = _chosen(args)
    if not chosen:
        text = _spec_text(args.spec)
        if not text:
            sys.stderr.write("ci-callback: no sweep spec: set CI_CALLBACK_RECONCILE_SPEC, pass --spec, or --queue …\n")
            return 2
        try:
            chosen = connect.targets(parse_spec(text))
        except InvalidSweepSpec as exc:
            sys.stderr.write(f"ci-callback: the sweep spec is not valid: {exc}\n")
            return 2
    if args.via == "tdmq" and not (args.mq_region and args.mq_name):
        sys.stderr.write("ci-callback: --via tdmq needs --mq-region and --mq-name\n")
        return 2
    url = connect.callback_url(_default_url(args) if args.via == "url" else (args.url or ""), settings.tokens)
    wiring = connect.Wiring(url, args.format.upper(), args.via, args.mq_mode, args.mq_region or "", args.mq_name or "")
    lines = connect.connect(settings, chosen, wiring, args.apply, args.allow_intranet)
    connect.render(lines, sys.stdout)
    if not args.apply and any(line.outcome == "would write" for line in lines):
        sys.stdout.write("connect: dry run, nothing written; the same command with --apply writes it\n")
    return connect.exit_code(lines)


def cmd_doctor(args: argparse.Namespace) -> int:
    from ci_callback.settings import Settings

    from . import connect, doctor

    _quiet_sdk()
    _load_env_file(args.env_file)
    settings = Settings.from_env()
    url = connect.callback_url(_default_url(args), settings.tokens)
    checks = doctor.doctor(settings, url, _spec_text(args.spec), _chosen(args), sweep_minutes=args.sweep_minutes)
    doctor.render(checks, sys.stdout)
    return doctor.exit_code(checks)


def _target_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None, help="the Function URL (default: recorded by make deploy for --stage)")
    p.add_argument("--spec", default=None, help="sweep spec: JSON text or a file (default: CI_CALLBACK_RECONCILE_SPEC)")
    p.add_argument("--queue", action="append", default=[], help="one media queue instead of the spec's (repeatable)")
    p.add_argument("--pic-queue", action="append", default=[], help="one image queue instead of the spec's")
    p.add_argument("--workflow", action="append", default=[], help="one workflow instead of the spec's")
    p.add_argument("--bucket", default=None, help="the bucket of --queue/--pic-queue/--workflow")
    p.add_argument("--region", default=None, help="its region, like ap-guangzhou")
    p.add_argument("--stage", default=os.environ.get("STAGE") or "dev", help="deploy stage (for the recorded URL)")
    p.add_argument("--env-file", default=None, help="read unset settings from this file (make passes .env)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ci-callback", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("parse", help="print a callback body as the normalised JSON model")
    p.add_argument("file", help="callback body file, or - for stdin")
    p.add_argument("--content-type", default=None, help="Content-Type hint (the body is sniffed anyway)")
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("invoke", help="run main_handler on an SCF event and print the integrated response")
    p.add_argument("event", help="SCF event JSON file (API Gateway or Function URL shape), or -")
    p.add_argument("--context", default=None, help="SCF context JSON file")
    p.add_argument("--token", default=None, help="add ?token=… to the event (CI_CALLBACK_TOKENS must accept it)")
    p.set_defaults(func=cmd_invoke)

    p = sub.add_parser("demo", help="run the local demo: embedded COS, replay events/, print what changed")
    p.add_argument("--events", default=None, help="directory of SCF events (default ./events)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="serve main_handler over HTTP on 127.0.0.1 with an embedded COS")
    p.add_argument("--local", action="store_true", help="embed a local S3-compatible COS (required)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--token", default=None, help="token to accept (default: generated and printed)")
    p.add_argument("--bucket", default="examplebucket-1250000000", help="bucket to create in the local COS")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("replay", help="re-run archived callbacks through the pipeline")
    p.add_argument("--bucket", required=True, help="bucket holding the archive (the index bucket)")
    p.add_argument("--prefix", default="", help="only archive keys under this sub-prefix (e.g. job/)")
    p.add_argument("--since", default=None, help="only callbacks archived at or after this time")
    p.add_argument("--until", default=None, help="only callbacks archived at or before this time")
    p.add_argument("--failures", action="store_true", help="only jobs with a failure record")
    p.add_argument("--force", action="store_true", help="ignore processed markers and run actions again")
    p.add_argument("--dry-run", action="store_true", help="list what would be replayed")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("reconcile", help="run the reconcile sweep once (what the timer trigger runs), with progress")
    p.add_argument("--spec", default=None,
                   help="sweep spec: JSON text, a file, or - (default: CI_CALLBACK_RECONCILE_SPEC)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds before the sweep stops and keeps its cursor (default: no limit)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("inspect", help="the story of one callback (job id, run id or moderation JobId) and its verdict")
    p.add_argument("id", help="job id, workflow run id or moderation JobId")
    p.add_argument("--bucket", required=True, help="bucket holding the inbox, markers and index")
    p.add_argument("--kind", choices=("job", "workflow", "moderation"), default=None, help="default: found in the bucket")
    p.add_argument("--json", action="store_true", help="the same as JSON, the verdict under 'verdict'")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("report", help="summarise a time window: outcomes, duplicates, failures, unfinished, delay")
    p.add_argument("--bucket", required=True, help="bucket holding the inbox, markers and index")
    p.add_argument("--since", default="24h", help="start: 24h, 7d, 90m ago, or an ISO time (default 24h)")
    p.add_argument("--until", default=None, help="end: same forms (default now)")
    p.add_argument("--html", default=None, metavar="FILE", help="also write one self-contained HTML page")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("check-deploy", help="resolve serverless.yml and layers/ with the real loader; validate")
    p.add_argument("action", nargs="?", default="check", choices=("check", "preflight", "record"),
                   help="check (default); preflight: make deploy's refusal; record: after a deploy")
    p.add_argument("--root", default=None, help="project root (default: this checkout)")
    p.add_argument("--stage", default=os.environ.get("STAGE") or "dev", help="as scf deploy --stage (default dev)")
    p.set_defaults(func=cmd_check_deploy)

    p = sub.add_parser("connect", help="point the spec's queues and workflows at the function (dry run without --apply)")
    _target_flags(p)
    p.add_argument("--apply", action="store_true", help="write the planned callbacks (default: only show them)")
    p.add_argument("--format", choices=("json", "xml", "JSON", "XML"), default="json", help="ResultFormat (default json)")
    p.add_argument("--via", choices=("url", "tdmq"), default="url", help="deliver to the URL (default) or a TDMQ topic")
    p.add_argument("--mq-mode", choices=("Topic", "Queue"), default="Topic", help="with --via tdmq (default Topic)")
    p.add_argument("--mq-region", default=None, help="with --via tdmq: sh, bj, gz, cd or hk")
    p.add_argument("--mq-name", default=None, help="with --via tdmq: the topic or queue name")
    p.add_argument("--allow-intranet", action="store_true", help="accept a loopback/intranet URL (local stack only)")
    p.set_defaults(func=cmd_connect)

    p = sub.add_parser("doctor", help="check the URL, the queues' callbacks, the role and the sweep; ✓/✗ per check")
    _target_flags(p)
    p.add_argument("--sweep-minutes", type=int, default=30, help="the timer's interval (serverless.yml: 30)")
    p.set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ci_callback import log
    from ci_callback.errors import Misconfigured

    log.set_stream(sys.stderr)  # stdout carries the command's JSON
    try:
        return int(args.func(args))
    except Misconfigured as exc:  # names the variable, never its value
        sys.stderr.write(f"ci-callback: misconfigured: {exc}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
