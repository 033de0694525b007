"""The sweep-scale benchmark (bench/sweepscale.py) at a tiny scale: given a day of jobs whose
callbacks were all processed, the sweep with its state costs less than the sweep without, and
the world stays steady (the benchmark refuses a sweep that processed or failed anything)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _sweepscale() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # sweepscale imports bench/common.py as `common`
    try:
        spec = importlib.util.spec_from_file_location("bench_sweepscale", BENCH / "sweepscale.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_the_sweep_state_makes_a_steady_day_cheaper_at_a_tiny_scale():
    from ci_callback import log
    from ci_callback.reconcile import run as reconcile

    originals = (reconcile.datetime, reconcile._Run.load_state, reconcile._Run.save_state)
    try:
        result = _sweepscale().run((2_000,), {2_000: 2})
    finally:
        log.set_stream(None)  # the benchmark sends log lines to /dev/null
    before, after = result["data"]
    assert before["before"] and not after["before"]
    assert after["cos_per_job_day"] < before["cos_per_job_day"]
    assert after["lists_per_job_day"] < before["lists_per_job_day"]
    assert after["sweep_s"] < before["sweep_s"]
    # Before: each job is checked once per sweep it stays in the lookback (180 / 30 = 6 times).
    assert 5 <= before["cos_per_job_day"] <= 7
    assert "2,000" in result["text"] and "×24" in result["text"]
    # The benchmark puts the real sweep back as it found it.
    assert (reconcile.datetime, reconcile._Run.load_state, reconcile._Run.save_state) == originals
