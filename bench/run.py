"""Run every benchmark in one go (``make bench``) and write bench/out/:

* ``results.json`` — the machine, every section's raw figures and the summary;
* ``report.md``    — the tables, the summary with targets and PASS/MISS;
* ``*.png``        — memory.png (RSS curve), cpu.png, coldstart.png, fanout.png, growth.png,
  fanout-width.png.

    python bench/run.py                          # everything
    python bench/run.py --only cpu,fanout        # some sections
    python bench/run.py --compare OLD.json       # add a "before" column from an earlier results.json

Sections: cpu (1), coldstart (2), fanout (3), memory (4), size (5), growth (6: cost growth with
the job's size, the worst accepted body, round trips per callback kind, fan-out width), sweepscale (7: the reconcile sweep's requests per job
per day at 10k, 100k and 1M jobs a day, before and after its state). Each is also a script
of its own (``python bench/cpu.py`` …). Benchmarks report; they never fail the run on a
missed target (the exit code is 0 unless a section crashes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import png  # noqa: E402

SECTIONS = ["cpu", "coldstart", "fanout", "memory", "size", "growth", "sweepscale"]


def _charts(results: dict[str, dict[str, Any]], out: Path) -> list[str]:
    made = []
    mem = results.get("memory", {})
    if "chart" in mem:
        ch = mem["chart"]
        png.line_chart(out / "memory.png", "RSS over 1000 mixed callbacks (LocalCOS in another process)",
                       ch["x"], {"current RSS (statm)": ch["current"], "peak RSS (ru_maxrss)": ch["peak"]},
                       xlabel="callbacks", ylabel="MB", hlines={"target 64 MB": 64.0})
        made.append("memory.png")
    cpu = results.get("cpu", {}).get("data")
    if cpu:
        events = cpu["events"]
        png.bar_chart(out / "cpu.png", "CPU per callback, µs (no-op storage)",
                      [e["event"].replace("function-url-", "url-") for e in events],
                      {"ours": [e["ours"]["cpu_us"] for e in events],
                       "parse_callback": [e["parser"]["cpu_us"] for e in events]})
        made.append("cpu.png")
    cold = results.get("coldstart", {}).get("data")
    if cold:
        keys = ["a", "b", "b+", "c", "d"]
        labels = ["a bare python", "b import sdk+xmltodict", "b+ floor with requests", "c ours first call",
                  "d ours refused"]
        marks = {4: cold["wall"]["a"]["median_ms"] * 2}
        png.bar_chart(out / "coldstart.png", "Cold start, whole process, ms (median)", labels,
                      {"median": [cold["wall"][k]["median_ms"] for k in keys],
                       "p90": [cold["wall"][k]["p90_ms"] for k in keys]}, unit="", marks=marks)
        made.append("coldstart.png")
    fan = results.get("fanout", {}).get("data")
    if fan:
        lat = fan["latency"]
        ours = next(k for k in lat if k != "fanout=1" and "@" not in k)  # the product's default pool size
        png.bar_chart(out / "fanout.png", "Segment (9 outputs) at +20 ms per COS request, ms",
                      [f"ours {ours}", "one after another"],
                      {"whole callback": [lat[ours]["total_ms"], lat["fanout=1"]["total_ms"]],
                       "tagging fan-out": [lat[ours]["tagging_ms"], lat["fanout=1"]["tagging_ms"]]},
                      marks={0: fan["target_rtt"] * fan["delay_s"] * 1000})
        made.append("fanout.png")
    made += results.get("growth", {}).get("charts", [])  # growth.py draws its own
    return made


def _summary_rows(results: dict[str, dict[str, Any]], before: dict[str, Any] | None) -> list[list[str]]:
    old = {}
    if before:
        old = {row["figure"]: row for row in before.get("summary", [])}
    rows = []
    for name in SECTIONS:
        section = results.get(name)
        if section is None:
            continue
        if "error" in section:
            rows.append([f"{name}: crashed", section["error"].splitlines()[-1][:80], "-", "ERROR"]
                        + (["-"] if before else []))
            continue
        for item in section["summary"]:
            target = item.get("target")
            verdict = "info" if target is None else common.verdict(item.get("value"), target)
            row = [item["figure"], item["shown"], item["target_shown"], verdict]
            if before:
                prev = old.get(item["figure"])
                row.append(f"{prev['shown']} ({prev['verdict']})" if prev else "-")
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    parser.add_argument("--compare", type=Path, help="an earlier results.json for a before/after column")
    parser.add_argument("--out", type=Path, default=common.OUT)
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in (args.only or ",".join(SECTIONS)).split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {SECTIONS}")
    before = json.loads(args.compare.read_text()) if args.compare else None
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    info = common.machine()
    print(f"ci-callback benchmarks — {info['date']}")
    print(f"machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']} ({info['platform']}), "
          f"load average at start {info['loadavg_at_start']}\n")
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        if name not in wanted:
            continue
        t0 = time.perf_counter()
        print(f"… running {name}", flush=True)
        try:
            module = __import__(name)
            result = module.run()
        except Exception:  # one broken section must not hide the others
            results[name] = {"title": name, "error": traceback.format_exc()}
            print(results[name]["error"], file=sys.stderr)
            continue
        result["seconds"] = round(time.perf_counter() - t0, 1)
        results[name] = result
        common.emit(result)
    charts = _charts(results, out)
    info["loadavg_at_end"] = common.machine()["loadavg_at_start"]
    info["seconds"] = round(time.perf_counter() - started, 1)

    headers = ["figure", "value", "target", "verdict"] + (["before"] if before else [])
    rows = _summary_rows(results, before)
    summary = common.table(headers, rows, "l" * len(headers))
    machine_line = (f"{info['date']} · {info['nproc']} CPUs · {info['cpu']} · Python {info['python']} "
                    f"({info['implementation']}, {info['platform']}) · load average {info['loadavg_at_start']} at "
                    f"start, {info['loadavg_at_end']} at end · {info['seconds']} s")
    print("## Summary\n")
    print(machine_line + "\n")
    print(summary)

    report = ["# ci-callback benchmarks", "", machine_line, "", "## Summary", "", summary, ""]
    for name in SECTIONS:
        section = results.get(name)
        if section is None:
            continue
        report += [f"## {section['title']}", ""]
        report += ["```", section["error"], "```"] if "error" in section else [section["text"]]
        report.append("")
    if charts:
        report += ["## Charts", ""] + [f"![{c}]({c})" for c in charts] + [""]
    (out / "report.md").write_text("\n".join(report), encoding="utf-8")
    flat_summary = []
    for name in SECTIONS:
        for item in results.get(name, {}).get("summary", []):
            target = item.get("target")
            flat_summary.append({**item, "section": name,
                                 "verdict": "info" if target is None else common.verdict(item.get("value"), target)})
    (out / "results.json").write_text(json.dumps(
        {"machine": info, "summary": flat_summary,
         "sections": {k: {kk: vv for kk, vv in v.items() if kk != "text"} for k, v in results.items()}},
        indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    print(f"\nwrote {out / 'results.json'}, {out / 'report.md'} and {', '.join(charts) or 'no charts'}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
