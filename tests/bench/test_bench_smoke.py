"""The benchmark harness, end to end on a tiny load, so that it cannot rot (speed is judged by bench/, not here)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from bench.profiles import PROFILES
from bench.report import ROWS, labels, targets

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


def services_or_skip():
    """The benchmark needs the local PostgreSQL and Redis; outside CI, their absence skips the test."""
    try:
        engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        redis.Redis(socket_timeout=2).ping()
    except Exception as err:  # noqa: BLE001 - any failure here means a missing service
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL or Redis not available: {err}")


def table_rows(markdown):
    """{measure: (target, result, verdict)} of the results table."""
    rows = {}
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4 and cells[0] != "Measure":
            rows[cells[0]] = tuple(cells[1:])
    return rows


def test_the_smoke_profile_prints_and_writes_the_table_with_every_row(tmp_path):
    services_or_skip()
    out = tmp_path / "latest.md"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--profile", "smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    results = json.loads(out.with_suffix(".json").read_text())
    rows = table_rows(out.read_text())
    measures = labels(results)
    assert len(measures) == len(ROWS)
    for measure, (key, _, _), target in zip(measures, ROWS, targets(results), strict=True):
        assert measure in rows, f"row {key} is missing"
        row_target, result, verdict = rows[measure]
        assert row_target == target
        assert result and not result.startswith("n/a"), f"row {key} has no result: {result!r}"
        assert verdict in ("met", "**missed**", "n/a")
    assert "| Measure | Target | Result | Met? |" in run.stdout
    assert results["machine"]["nproc"] >= 1 and results["machine"]["cpu_model"]
    the_floor_ran_beside_the_storefront(results, rows)


def the_floor_ran_beside_the_storefront(results, rows):
    """The floor's phases ran at the storefront's rates, with its tabs, and its rows compare the two."""
    by_key = dict(zip((key for key, _, _ in ROWS), (rows[m] for m in labels(results)), strict=True))
    for rate in PROFILES["smoke"].rates:
        floor, store = results["phases"][f"floor {rate}/s"], results["phases"][f"{rate}/s"]
        assert floor["counts"]["changes"] > 0 and not [k for k in floor["counts"] if k.startswith("error")]
        assert floor["counts"].get("version_mismatch", 0) == 0
        assert floor["push"]["n"] > 0 and floor["lagging_tabs"] == 0
        assert floor["server_cpu"] > 0 and store["server_cpu"] > 0
    for key in ("floor_cpu", "floor_push"):
        _, result, verdict = by_key[key]
        assert "n/a" not in result, f"row {key} lacks a number: {result!r}"
        assert verdict in ("met", "**missed**")
