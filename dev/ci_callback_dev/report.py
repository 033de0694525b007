"""``ci-callback report``: what happened in a time window, from the bucket alone.

Three listings (inbox, markers, failure records) and one read per callback in the
window (its terminal archived body), plus the sweep summaries. Read-only, so Ctrl-C
at any point leaves nothing behind.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .progress import Progress
from .records import (
    Bucket,
    Marker,
    is_terminal,
    parse_archive_key,
    parse_delivery_key,
    parse_marker_key,
    utc,
)
from .story import (
    FAILED,
    NEVER,
    PROCESSED,
    PROCESSING,
    UNFINISHED,
    Facts,
    _parse,
    judge,
)

OUTCOMES = (PROCESSED, FAILED, PROCESSING, UNFINISHED)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(value: str | None, now: datetime) -> datetime | None:
    """``24h``, ``90m``, ``7d`` (that long before now) or an ISO time (UTC unless it says)."""
    if value is None:
        return None
    match = _DURATION.match(value)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    stamp = utc(value if ("T" in value or " " in value) else value + "T00:00:00+00:00")
    if stamp is None:
        raise ValueError(f"cannot read the time {value!r} (use 24h, 7d or 2026-11-20T10:00:00+08:00)")
    return stamp


@dataclass
class Row:
    """One callback (kind, id) in the window."""

    kind: str
    id: str
    tag: str | None
    state: str | None
    outcome: str
    verdict: str
    fix: str | None
    first_received: datetime | None
    deliveries: int
    duplicates: int
    sources: dict[str, int]
    recorded: bool
    recovered_by_sweep: bool
    delay_seconds: float | None
    code: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["first_received"] = _iso(self.first_received)
        return data


@dataclass
class Summary:
    bucket: str
    since: datetime
    until: datetime
    rows: list[Row] = field(default_factory=list)
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # objects whose read failed: counted as absent
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    # ---------------------------------------------------------------- aggregates

    def by_kind_tag(self) -> list[tuple[str, str, dict[str, int], int]]:
        table: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for row in self.rows:
            table[(row.kind, row.tag or "-")][row.outcome] += 1
        return [(kind, tag, dict(counts), sum(counts.values())) for (kind, tag), counts in sorted(table.items())]

    def outcome_totals(self) -> dict[str, int]:
        counts = Counter(row.outcome for row in self.rows)
        return {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}

    def delivery_sources(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for row in self.rows:
            counts.update(row.sources)
        return dict(sorted(counts.items()))

    def deliveries(self) -> int:
        return sum(row.deliveries for row in self.rows)

    def duplicates(self) -> int:
        return sum(row.duplicates for row in self.rows)

    def unrecorded(self) -> int:
        """Callbacks without per-delivery records: their identical re-deliveries cannot be counted."""
        return sum(1 for row in self.rows if not row.recorded)

    def recovered(self) -> list[Row]:
        return [row for row in self.rows if row.recovered_by_sweep]

    def failures(self) -> list[tuple[str, str, str, int, list[str]]]:
        groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for row in self.rows:
            if row.outcome == FAILED or (row.code and row.state in ("Failed", "Cancel")):
                groups[(row.tag or "-", row.code or "-", row.message or "-")].append(row.id)
        return sorted(((t, c, m, len(ids), sorted(ids)) for (t, c, m), ids in groups.items()),
                      key=lambda g: (-g[3], g[0], g[1]))

    def stuck(self) -> list[Row]:
        """Unfinished jobs whose deliveries keep dying (``inspect``'s ``stuck: N attempts``)."""
        return [row for row in self.rows if row.outcome == UNFINISHED and "stuck: " in row.verdict]

    def unfinished(self) -> list[Row]:
        return [row for row in self.rows if row.outcome in (UNFINISHED, PROCESSING)]

    def delays(self) -> dict[str, float | None]:
        values = sorted(row.delay_seconds for row in self.rows if row.delay_seconds is not None)
        return {"count": float(len(values)), "p50": percentile(values, 50), "p90": percentile(values, 90),
                "p99": percentile(values, 99), "max": values[-1] if values else None}

    def timeline(self, bins: int = 24) -> tuple[list[datetime], list[dict[str, int]]]:
        """Callbacks over the window by outcome, in ``bins`` equal slices (first delivery time)."""
        span = max((self.until - self.since).total_seconds(), 1.0)
        width = span / bins
        starts = [self.since + timedelta(seconds=width * i) for i in range(bins)]
        counts: list[dict[str, int]] = [{o: 0 for o in OUTCOMES} for _ in range(bins)]
        for row in self.rows:
            if row.first_received is None:
                continue
            slot = int((row.first_received - self.since).total_seconds() // width)
            counts[min(max(slot, 0), bins - 1)][row.outcome] += 1
        return starts, counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "generated_at": _iso(self.generated_at),
            "callbacks": len(self.rows),
            "outcomes": self.outcome_totals(),
            "by_kind_tag": [{"kind": k, "tag": t, "outcomes": c, "total": n} for k, t, c, n in self.by_kind_tag()],
            "deliveries": self.deliveries(),
            "delivery_sources": self.delivery_sources(),
            "duplicates": self.duplicates(),
            "callbacks_without_delivery_records": self.unrecorded(),
            "recovered_by_sweep": [r.id for r in self.recovered()],
            "failures": [{"tag": t, "code": c, "message": m, "count": n, "ids": ids} for t, c, m, n, ids in self.failures()],
            "unfinished": [r.to_dict() for r in self.unfinished()],
            "stuck": [r.id for r in self.stuck()],
            "delay_seconds": self.delays(),
            "sweeps": self.sweeps,
            "unreadable": self.unreadable,
            "rows": [r.to_dict() for r in self.rows],
        }


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted values (None when there are none)."""
    if not values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return float(values[min(rank, len(values)) - 1])


def _iso(stamp: datetime | None) -> str | None:
    return stamp.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if stamp else None


def _short(stamp: datetime) -> str:
    return stamp.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------- building it


def _ended_at(callback: Any) -> datetime | None:
    ended = getattr(callback, "ended_at", None)
    if ended is None and getattr(callback, "tasks", None):
        stamps = [t.ended_at for t in callback.tasks if t.ended_at is not None]
        ended = max(stamps) if stamps else None
    return ended.astimezone(timezone.utc) if ended is not None else None


def build(bucket: Bucket, since: datetime, until: datetime, progress: Progress | None = None,
          now: float | None = None) -> Summary:
    progress = progress or Progress.quiet()
    summary = Summary(bucket.name, since, until)
    facts: dict[tuple[str, str], Facts] = {}

    def of(kind: str, callback_id: str) -> Facts:
        return facts.setdefault((kind, callback_id), Facts(kind, callback_id))

    # 1. Listings: the item count is unknown until they end.
    progress.start("listing the inbox", None)
    for item in bucket.list(bucket.archive_prefix):
        progress.advance()
        entry = parse_archive_key(bucket.archive_prefix, item.key)
        if entry is not None:
            entry.modified = item.modified
            of(entry.kind, entry.id).archives.append(entry)
            continue
        delivery = parse_delivery_key(bucket.archive_prefix, item.key)
        if delivery is not None:
            of(delivery[0], delivery[1]).deliveries.append(delivery[2])
    progress.start("listing the markers", None)
    for item in bucket.list(bucket.marker_prefix):
        progress.advance()
        parsed = parse_marker_key(bucket.marker_prefix, item.key)
        if parsed is not None and (parsed[0], parsed[1]) in facts:
            marker: Marker = parsed[2]
            marker.modified = item.modified
            facts[(parsed[0], parsed[1])].markers.setdefault(marker.state, []).append(marker)
    failures = set()
    for item in bucket.list(bucket.failures_prefix):
        name = item.key[len(bucket.failures_prefix):]
        if name.endswith(".json"):
            from urllib.parse import unquote

            failures.add(unquote(name[: -len(".json")]))

    # 2. The callbacks whose first delivery falls in the window.
    selected = []
    for f in facts.values():
        received = [d.received_at for d in f.all_deliveries() if d.received_at is not None]
        first = min(received) if received else None
        if first is not None and since <= first <= until:
            f.failure_listed = f.kind == "job" and f.id in failures
            f.pick_final()
            selected.append((f, first))

    # 3. One read per callback: its terminal body (tag, CI's code/message, end time) and live leases.
    progress.start("reading callbacks", len(selected))

    def read(item: tuple[Facts, datetime]) -> None:
        f = item[0]
        if f.final is not None:
            f.final.document = bucket.get_json(f.final.key)
            f.callback = _parse(f.final.document)
        elif f.archives:  # only non-terminal states so far: the Tag is still worth showing
            latest = max(f.archives, key=lambda a: a.modified or since)
            latest.document = bucket.get_json(latest.key)
        f.tag = next((str(a.document["tag"]) for a in f.archives if a.document and a.document.get("tag")), None)
        for markers in f.markers.values():
            if not any(m.name == "done" for m in markers):
                for m in markers:
                    if m.name.startswith("lease-"):
                        m.body = bucket.get_json(m.key)
        if f.failure_listed and f.callback is None:
            f.failure = bucket.get_json(bucket.failure_key(f.id))

    for (read_facts, first), _ in bucket.read_many(selected, read, progress.advance):
        summary.rows.append(_row(bucket, read_facts, first, now))
    summary.rows.sort(key=lambda r: (r.first_received or since, r.kind, r.id))

    # 4. Sweep summaries (issue 11), by their date/time keys.
    summary.sweeps = _sweeps(bucket, since, until, progress)
    summary.unreadable = list(bucket.errors)
    progress.finish()
    return summary


def _row(bucket: Bucket, f: Facts, first: datetime, now: float | None) -> Row:
    f.index_found = False  # unknown here: a listing of the index would cost more than it tells
    verdict = judge(f, bucket.name, now)
    if verdict.outcome == NEVER:  # pragma: no cover - a selected callback was seen
        verdict.outcome = UNFINISHED
    callback = f.callback
    deliveries = f.all_deliveries()
    per_state = Counter(d.state for d in deliveries)
    duplicates = sum(n - 1 for n in per_state.values() if n > 1) if f.deliveries else 0
    sources = Counter(d.source for d in deliveries)
    terminal = [d for d in deliveries if is_terminal(f.kind, d.state)]
    recovered = bool(terminal) and terminal[0].source == "reconcile"
    delay = None
    if verdict.outcome in (PROCESSED, FAILED) and callback is not None and verdict.state is not None:
        done = next((m for m in f.markers.get(verdict.state, []) if m.name == "done"), None)
        ended = _ended_at(callback)
        if done is not None and done.modified is not None and ended is not None:
            delay = max((done.modified - ended).total_seconds(), 0.0)
    code = getattr(callback, "code", None) if callback is not None else (f.failure or {}).get("code")
    message = getattr(callback, "message", None) if callback is not None else (f.failure or {}).get("message")
    tag = (getattr(callback, "tag", None) if callback is not None else None) or f.tag
    return Row(f.kind, f.id, tag, verdict.state, verdict.outcome, verdict.line, verdict.fix, first,
               len(deliveries), duplicates, dict(sources), bool(f.deliveries), recovered, delay,
               None if code is None else str(code), None if message is None else str(message))


_SWEEP_NAME = re.compile(r"(\d{4}-?\d{2}-?\d{2})/(\d{2}:?\d{2}:?\d{2}(?:\.\d+)?Z?)")


def _sweeps(bucket: Bucket, since: datetime, until: datetime, progress: Progress) -> list[dict[str, Any]]:
    """Sweep summaries under ``<index_prefix>sweeps/<UTC date>/<time>-<request id>.json``, read
    defensively: only a few well-known fields are shown, the rest stays in the JSON."""
    listed = [item for item in bucket.list(bucket.sweeps_prefix) if item.key.endswith(".json")]
    chosen = []
    for item in listed:
        stamp = item.modified
        match = _SWEEP_NAME.search(item.key[len(bucket.sweeps_prefix):])
        if match:
            text = match.group(1).replace("-", "") + "T" + match.group(2).replace(":", "").rstrip("Z")
            try:
                stamp = datetime.strptime(text.split(".")[0], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
            except ValueError:
                pass
        if stamp is not None and since <= stamp <= until:
            chosen.append((item, stamp))
    if not chosen:
        return []
    progress.start("reading sweep summaries", len(chosen))
    sweeps = []
    for (item, stamp), document in bucket.read_many(chosen, lambda c: bucket.get_json(c[0].key), progress.advance):
        document = document or {}
        if isinstance(document.get("summary"), dict):
            document = {**document["summary"], **{k: v for k, v in document.items() if k != "summary"}}
        sweeps.append({"key": item.key, "at": _iso(stamp), **{k: document.get(k) for k in _SWEEP_FIELDS if k in document}})
    return sorted(sweeps, key=lambda s: s["at"] or "")


# The reconcile sweep's summary fields (issue 11), flat or under "summary"; others stay in the JSON.
_SWEEP_FIELDS = ("request_id", "resumed", "listed", "archived", "already_done", "processed", "recovered", "failed", "skipped",
                 "replayed", "list_errors", "complete")


def elapsed(started: float) -> str:
    return f"{time.monotonic() - started:.1f} s"


# ---------------------------------------------------------------- the tables (terminal and HTML alike)


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    numeric: tuple[int, ...] = ()  # right-aligned columns
    note: str | None = None


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def tables(summary: Summary) -> list[Table]:
    totals = summary.outcome_totals()
    out = [Table(
        "Callbacks by outcome",
        ["callbacks", *OUTCOMES, "deliveries", "duplicates", "recovered by sweep"],
        [[str(len(summary.rows)), *(str(totals[o]) for o in OUTCOMES), str(summary.deliveries()),
          str(summary.duplicates()), str(len(summary.recovered()))]],
        tuple(range(8)),
        "; ".join(n for n in (
            f"{summary.unrecorded()} callback(s) predate per-delivery records: their identical re-deliveries are not "
            "counted" if summary.unrecorded() else "",
            f"{len(summary.stuck())} unfinished callback(s) are stuck: their deliveries keep dying"
            if summary.stuck() else "",
            f"{len(summary.unreadable)} object(s) could not be read and count as absent, e.g. {summary.unreadable[0]}"
            if summary.unreadable else "") if n) or None,
    )]
    out.append(Table(
        "By kind and Tag", ["kind", "Tag", *OUTCOMES, "total"],
        [[k, t, *(str(c.get(o, 0)) for o in OUTCOMES), str(n)] for k, t, c, n in summary.by_kind_tag()],
        tuple(range(2, 3 + len(OUTCOMES))),
    ))
    sources = summary.delivery_sources()
    out.append(Table(
        "Deliveries by source", ["source", "deliveries"], [[s, str(n)] for s, n in sources.items()], (1,),
        "reconcile = found by the sweep: CI's own delivery never arrived" if sources.get("reconcile") else None,
    ))
    out.append(Table(
        "Failures (CI's code and message)", ["Tag", "code", "message", "count", "ids"],
        [[t, c, m, str(n), ", ".join(ids[:3]) + (" …" if len(ids) > 3 else "")] for t, c, m, n, ids in summary.failures()],
        (3,),
    ))
    out.append(Table(
        "Unfinished", ["kind", "id", "Tag", "state", "verdict", "fix"],
        [[r.kind, r.id, r.tag or "-", r.state or "-", r.verdict, r.fix or "-"] for r in summary.unfinished()],
    ))
    delays = summary.delays()
    out.append(Table(
        "Processing delay (job end → done marker)", ["callbacks", "p50", "p90", "p99", "max"],
        [[str(int(delays["count"] or 0)), _seconds(delays["p50"]), _seconds(delays["p90"]), _seconds(delays["p99"]),
          _seconds(delays["max"])]],
        (0, 1, 2, 3, 4),
    ))
    if summary.sweeps:
        fields = [f for f in _SWEEP_FIELDS if any(f in s for s in summary.sweeps)]
        out.append(Table(
            "Sweeps", ["at (UTC)", *fields],
            [[(s["at"] or "-").replace("T", " ").rstrip("Z"), *(_cell(s.get(f)) for f in fields)]
             for s in summary.sweeps],
            tuple(n + 1 for n, f in enumerate(fields) if f not in ("request_id", "resumed", "complete")),
        ))
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, dict)):
        return str(len(value))
    return str(value)


def window_line(summary: Summary) -> str:
    return (f"Bucket {summary.bucket}, callbacks first delivered {_short(summary.since)} → {_short(summary.until)}"
            f" ({len(summary.rows)} callbacks)")


def render_terminal(summary: Summary, stream: Any) -> None:
    """The tables with rich: boxes and colour on a terminal; plain text in a pipe, as wide as
    the tables need (nothing wraps in a file) and without trailing blanks."""
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    tty = _isatty(stream)
    target = stream if tty else io.StringIO()
    console = Console(file=target, width=None if tty else 1000, highlight=False, force_terminal=None if tty else False)
    console.print(window_line(summary), markup=False)
    for table in tables(summary):
        rich_table = RichTable(title=Text(table.title, style="bold"), title_justify="left", box=box.SIMPLE_HEAD)
        for n, header in enumerate(table.headers):
            rich_table.add_column(header, justify="right" if n in table.numeric else "left", overflow="fold")
        for row in table.rows:
            rich_table.add_row(*(Text(cell) for cell in row))  # Text: ids and messages are not markup
        if not table.rows:
            rich_table.add_row(*(Text(c) for c in ["none"] + [""] * (len(table.headers) - 1)))
        console.print(rich_table)
        if table.note:  # below the table, not a caption: a caption wraps at the table's width
            console.print(Text(f"  {table.note}", style="dim"))
            console.print()
    if not tty:
        stream.write("\n".join(line.rstrip() for line in target.getvalue().splitlines()) + "\n")


def _isatty(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())
