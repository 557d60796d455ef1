"""The table's rows against the floor: storefront ÷ floor ratios, judged against the targets."""

import json
from pathlib import Path

from bench.report import build, markdown

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "latest.json"


def phase(rate, cpu, p50, p99):
    return {"achieved_rate": rate, "server_cpu": cpu, "push": {"n": 100, "p50": p50, "p99": p99, "max": p99}}


def results(store_cpu_100=0.7, store_p99_100=20.0):
    """A run at 100 and 300 changes/s in which the floor costs 2.5 ms a change and pushes in 4 / 10 ms."""
    run = json.loads(RESULTS.read_text())
    run["phases"].update(
        {
            "100/s": phase(100, store_cpu_100, 8.0, store_p99_100),
            "300/s": phase(300, 1.05, 12.0, 45.0),
            "floor 100/s": phase(100, 0.25, 4.0, 10.0),
            "floor 300/s": phase(300, 0.75, 5.0, 30.0),
        }
    )
    return run


def row(run, key):
    return next((target, result, ok) for k, _, target, result, ok in build(run) if k == key)


def test_cpu_per_change_is_compared_at_both_rates_against_one_and_a_half_times_the_floor():
    target, result, ok = row(results(store_cpu_100=0.35), "floor_cpu")
    assert target == "≤ 1.5× at both rates"
    assert result == "100/s: 3.5 ms ÷ 2.5 ms = 1.40× · 300/s: 3.5 ms ÷ 2.5 ms = 1.40×"
    assert ok is True
    _, result, ok = row(results(store_cpu_100=0.7), "floor_cpu")
    assert result.startswith("100/s: 7.0 ms ÷ 2.5 ms = 2.80×") and ok is False


def test_push_p99_at_the_low_rate_is_judged_against_twice_the_floor():
    target, result, ok = row(results(store_p99_100=20.0), "floor_push")
    assert target == "p99 at 100/s ≤ 2×"
    assert result == "4.0 ms / 10.0 ms (×2.00 / ×2.00) · 5.0 ms / 30.0 ms (×2.40 / ×1.50)"
    assert ok is True
    assert row(results(store_p99_100=20.5), "floor_push")[2] is False


def test_a_run_without_the_floor_renders_its_rows_as_not_measured():
    run = json.loads(RESULTS.read_text())
    run["phases"] = {name: p for name, p in run["phases"].items() if not name.startswith("floor")}
    assert row(run, "floor_cpu")[2] is None and row(run, "floor_push")[2] is None
    text = markdown(run)
    assert "| Server CPU per change, storefront ÷ floor" in text and "| p99 at 100/s ≤ 2× |" in text


def test_the_floors_profile_renders_without_storefront_functions():
    run = results()
    run["phases"]["floor 300/s"]["profile"] = {
        "busy": 0.6,
        "samples": 600,
        "self": [("eventlet (hub, green I/O, wsgi)", 0.4), ("baseline server code", 0.1)],
        "storefront": [],
    }
    text = markdown(run)
    assert "## Where the server's CPU goes — py-spy, phase floor 300/s" in text
    assert "baseline server code 10%" in text and "(No storefront code in this process.)" in text
