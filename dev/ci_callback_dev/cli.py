"""``ci-callback``: parse bodies, invoke the handler on events, run the local demo."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

from .events import with_token


def _read(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    return Path(source).read_bytes()


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def cmd_parse(args: argparse.Namespace) -> int:
    from ci_callback.errors import InvalidCallback
    from ci_callback.parse import parse_callback

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


def _parse_time(value: Optional[str]):  # type: ignore[no-untyped-def]
    from ci_callback.times import parse_time

    if value is None:
        return None
    stamp = parse_time(value if "T" in value or " " in value else value + "T00:00:00+08:00")
    if stamp is None:
        raise SystemExit(f"ci-callback: cannot read the time {value!r} (use 2026-11-20T10:00:00+08:00)")
    return stamp


def cmd_replay(args: argparse.Namespace) -> int:
    from ci_callback.app import replay
    from ci_callback.replay import select
    from ci_callback.services import Services
    from ci_callback.settings import Settings

    settings = Settings.from_env()
    storage = Services.from_env(settings).storage
    keys = list(select(storage, args.bucket, settings, args.prefix, _parse_time(args.since),
                       _parse_time(args.until), args.failures))
    if args.dry_run:
        _print_json({"selected": keys})
        return 0
    results = replay(storage, args.bucket, settings, keys, force=args.force)
    _print_json([r.__dict__ for r in results])
    return 0 if all(200 <= r.status < 300 for r in results) else 1


def cmd_reconcile(args: argparse.Namespace) -> int:
    """The timer's sweep, from a laptop: the same entry, cursor and summary as on SCF."""
    from datetime import datetime, timezone

    from ci_callback.app import handle

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
    result = handle(event, context)
    _print_json(result)
    if result.get("status") == "rejected":
        return 2
    return 0 if result.get("ok") else 1


def cmd_check_deploy(args: argparse.Namespace) -> int:
    from .deploycheck import main as check_main

    return check_main([args.action, "--stage", args.stage] + (["--root", args.root] if args.root else []))


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
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("reconcile", help="run the reconcile sweep once (what the timer trigger runs)")
    p.add_argument("--spec", default=None,
                   help="sweep spec: JSON text, a file, or - (default: CI_CALLBACK_RECONCILE_SPEC)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds before the sweep stops and keeps its cursor (default: no limit)")
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("check-deploy", help="resolve serverless.yml and layers/ with the real loader; validate")
    p.add_argument("action", nargs="?", default="check", choices=("check", "preflight", "record"),
                   help="check (default); preflight: make deploy's refusal; record: after a deploy")
    p.add_argument("--root", default=None, help="project root (default: this checkout)")
    p.add_argument("--stage", default=os.environ.get("STAGE") or "dev", help="as scf deploy --stage (default dev)")
    p.set_defaults(func=cmd_check_deploy)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
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
