"""``ci-callback``: parse bodies, invoke the handler on events, run the local demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional


def _read(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    return Path(source).read_bytes()


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def cmd_parse(args: argparse.Namespace) -> int:
    from .exceptions import InvalidCallback
    from .parse import parse_callback

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
    from .app import handle

    try:
        event = json.loads(_read(args.event))
        context = json.loads(_read(args.context)) if args.context else {"request_id": "local-invoke", "time_limit_in_ms": 3000}
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"ci-callback: cannot read the event: {exc}\n")
        return 2
    _print_json(handle(event, context))
    return 0


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
    p.set_defaults(func=cmd_invoke)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from . import log

    log.set_stream(sys.stderr)  # stdout carries the command's JSON
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
