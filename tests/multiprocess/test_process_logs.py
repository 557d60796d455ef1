"""LOG_LEVEL=INFO shows the store's info lines, with timestamps, in every process it runs as: the demo server
(`python wsgi.py`), the worker (`flask --app storefront worker`), the reconcile cron (`flask … reconcile`),
and the production server (gunicorn serving production:app), there as JSON lines carrying the request id."""

import json
import re
import secrets
import subprocess
import sys

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.stack import ROOT, ServerProcess, free_port, store_env
from tests.conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

# 2026-12-08 02:41:07,123 INFO [4242] storefront.checkout.service [lb-1] cart 1 v1: PaymentIntent pi_… created …
TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) \[(?P<pid>\d+)\] (?P<logger>\S+)"
    r" \[(?P<rid>[^]]+)\] (?P<message>.*)$"
)


@pytest.fixture
def env(sandbox, tmp_path):
    """A store on SQLite, talking to this run's sandbox, its background work off (the worker process does it)."""
    return store_env(
        port=free_port(),
        database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}",
        sandbox_port=sandbox.port,
        webhook_secret="whsec_" + secrets.token_hex(16),
        secret_key="test-" + secrets.token_hex(16),
        LOG_LEVEL="INFO",
        WORKER="off",
        WORKER_POLL_SECONDS="0.1",
        RECONCILE_INTERVAL_SECONDS="0",
    )


def store_lines(log_text, logger_prefix="storefront."):
    """The log's lines in the store's text format from the store's own loggers, parsed."""
    matches = (TEXT_LINE.match(line) for line in log_text.splitlines())
    return [m.groupdict() for m in matches if m and m["logger"].startswith(logger_prefix)]


def test_info_lines_with_timestamps_from_the_demo_server_the_worker_and_reconcile(env, tmp_path):
    web = ServerProcess.store("web", env, tmp_path).wait_ready()
    worker = None
    try:
        shopper = requests.Session()
        url = web.url
        change = {"product_id": 1, "quantity": 1}
        assert shopper.post(f"{url}/api/cart/items", json=change, timeout=10).status_code == 200
        assert shopper.post(f"{url}/api/checkout", headers={"X-Request-Id": "lb-1"}, timeout=20).status_code == 200
        change["quantity"] = 2  # with WORKER=off in the server, the worker process brings the PaymentIntent
        answer = shopper.post(f"{url}/api/cart/items", json=change, headers={"X-Request-Id": "lb-2"}, timeout=10)
        assert answer.status_code == 200 and answer.headers["X-Request-Id"] == "lb-2"
        web_lines = wait_for(lambda: _with(store_lines(web.log_tail(400)), "lb-2"), message="the demo's access line")
        created = [line for line in web_lines if "PaymentIntent" in line["message"] and "created" in line["message"]]
        assert [(line["level"], line["rid"], line["pid"]) for line in created] == [
            ("INFO", "lb-1", str(web.process.pid))
        ]
        assert any(line["logger"] == "storefront.access" and "POST /api/cart/items 200" in line["message"]
                   for line in web_lines)  # fmt: skip

        worker = ServerProcess.worker("worker", env, tmp_path)
        synced = wait_for(
            lambda: [line for line in store_lines(worker.log_tail(400)) if "now charges" in line["message"]],
            timeout=30,
            message="the worker's info line for its PaymentIntent update",
        )
        assert synced[0]["level"] == "INFO" and synced[0]["rid"] == "-"
        assert synced[0]["pid"] == str(worker.process.pid)
    finally:
        if worker is not None:
            worker.stop()
        web.stop()

    cron = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "storefront", "reconcile", "--older-than", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cron.returncode == 0, cron.stderr
    summaries = [line for line in store_lines(cron.stderr) if line["message"].startswith("reconcile: {")]
    assert len(summaries) == 1 and summaries[0]["level"] == "INFO", cron.stderr


def test_the_production_server_writes_json_lines_with_the_request_id(env, tmp_path):
    counts = tmp_path / "prometheus"
    counts.mkdir()
    env = {**env, "LOG_FORMAT": "json", "PROMETHEUS_MULTIPROC_DIR": str(counts), "METRICS_TOKEN": "t" * 32}
    web = ServerProcess.production("web", env, tmp_path).wait_ready()
    try:
        answer = requests.get(f"{web.url}/api/products", headers={"X-Request-Id": "edge-42"}, timeout=10)
        assert answer.status_code == 200 and answer.headers["X-Request-Id"] == "edge-42"
        access = wait_for(
            lambda: [line for line in _json_lines(web.log_tail(400)) if line.get("request_id") == "edge-42"],
            message="the access line as JSON",
        )
        scraped = requests.get(f"{web.url}/metrics", headers={"Authorization": "Bearer " + "t" * 32}, timeout=10)
    finally:
        web.stop()
    # Multiprocess mode: the count comes from the directory's files, the gauges from the database.
    assert scraped.status_code == 200 and list(counts.glob("counter_*.db"))
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
    }
    products = (("method", "GET"), ("route", "/api/products"), ("status", "200"))
    assert samples[("storefront_http_requests_total", products)] >= 2  # wait_ready's and ours
    assert samples[("storefront_lagging_carts", ())] == 0
    assert len(access) == 1
    line = access[0]
    assert (line["logger"], line["level"], line["method"], line["path"], line["status"]) == (
        "storefront.access",
        "INFO",
        "GET",
        "/api/products",
        200,
    )
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line["time"]) and line["pid"] != web.process.pid  # a worker


def _with(lines, request_id):
    return lines if any(line["rid"] == request_id for line in lines) else None


def _json_lines(text):
    parsed = []
    for line in text.splitlines():
        if line.startswith("{"):
            parsed.append(json.loads(line))  # a line that starts as JSON must parse
    return parsed
