"""The benchmark run: start the processes, offer each phase's load, measure, write the table.

Everything is on loopback and bounded: every phase has a fixed length, every wait a deadline, and
every process this starts is stopped at the end, also on failure.
"""

import asyncio
import json
import os
import platform
import secrets
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from . import cpu_profile, report
from .client import Http
from .load import HOST, Recorder, Store, Webhooks, open_idle_tabs
from .profiles import REALISTIC_STRIPE, SLOW_STRIPE
from .report import stats
from .stack import ServerProcess, free_port, store_env

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def machine():
    """nproc, CPU model, memory, Python and kernel of this machine."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory": f"{kib / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "kernel": f"Linux {platform.release()}",
    }


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Database:
    """A fresh PostgreSQL database for the run, dropped at the end."""

    def __init__(self):
        self.name = f"bench_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(
            POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
        )
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self):
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


class Bench:
    """One run of one profile."""

    def __init__(self, profile, logs, results_dir):
        self.p, self.logs, self.results_dir = profile, logs, Path(results_dir)
        self.recorder = Recorder()
        self.processes = []
        self.worker = None  # the store's worker process, while a storefront phase runs
        self.secret_key, self.webhook_secret = secrets.token_hex(32), "whsec_" + secrets.token_hex(24)
        self.channel = f"bench-{uuid.uuid4().hex[:12]}"
        self.py_spy = cpu_profile.find_py_spy() if profile.profile_cpu else None
        self.results = {
            "profile": profile.name,
            "machine": machine(),
            "phases": {},
            "carts": profile.carts,
            "tabs_per_cart": profile.tabs_per_cart,
            "tabs": profile.carts * profile.tabs_per_cart,
            "rates": list(profile.rates[:2]),
            "webhook_rate": profile.webhook_rate,
        }

    # -- processes -----------------------------------------------------------------------------

    async def start(self, process, path="/api/products"):
        self.processes.append(process)
        await asyncio.to_thread(process.wait_ready, path)
        return process

    async def stop(self, process):
        await asyncio.to_thread(process.stop)
        self.processes.remove(process)

    def store_process(self, name, module=None, **extra):
        extra.setdefault("channel", self.channel)  # the run's own Redis keys (budget, rate limits)
        # The web process does no background work; start_worker runs it beside it, measured on its own, and
        # the worker's pushes reach the web process's tabs through the Redis message queue (production's layout).
        extra.setdefault("WORKER", "off")
        extra.setdefault("queue", REDIS_URL)
        # Redis holds the Stripe update budget, as in production (docs/scale.md); the cart-change rate limit
        # is counted in process (RATELIMIT_STORAGE_URI's default).
        env = store_env(
            port=free_port(),
            database_url=self.db.url,
            sandbox_port=self.sandbox.port,
            webhook_secret=self.webhook_secret,
            secret_key=self.secret_key,
            LOG_LEVEL="WARNING",
            REDIS_URL=REDIS_URL,
            **extra,
        )
        command = [sys.executable, "-m", module] if module else [sys.executable, "wsgi.py"]
        return ServerProcess(name, command, env, self.logs, int(env["PORT"]))

    async def start_worker(self, store):
        """The store's worker process (`flask worker`, same environment), for the phases that follow."""
        env = {**store.env, "PORT": str(free_port())}
        self.worker = await self.start(ServerProcess.worker(f"{store.name}-worker", env, self.logs))
        return self.worker

    async def stop_worker(self):
        if self.worker is not None:
            await self.stop(self.worker)
            self.worker = None

    async def sandbox_call(self, method, path, body=None):
        status, answer = await self.control.json(method, path, body)
        if status >= 300:
            raise RuntimeError(f"sandbox {method} {path}: {status} {answer}")
        return answer

    async def webhooks_to(self, process):
        """Deliver the sandbox's webhooks to `process` only."""
        await self.sandbox_call("DELETE", "/_sandbox/webhook_endpoints")
        await self.sandbox_call(
            "POST",
            "/_sandbox/webhook_endpoints",
            {"url": f"{process.url}/webhooks/stripe", "secret": self.webhook_secret},
        )

    # -- the run -------------------------------------------------------------------------------

    async def run(self):
        self.db = await asyncio.to_thread(Database)
        try:
            port = free_port()
            self.sandbox = await self.start(
                ServerProcess(
                    "sandbox",
                    [
                        sys.executable,
                        "-m",
                        "bench.sandbox",
                        "--port",
                        str(port),
                        "--faults",
                        json.dumps(REALISTIC_STRIPE),
                    ],
                    os.environ,
                    self.logs,
                    port,
                ),
                path="/_sandbox/state",
            )
            self.control = Http(HOST, self.sandbox.port)
            await self.one_process()
            await self.two_processes()
            await self.naive()
            await self.floor()
            await self.bare()
            self.results["stripe_faults"] = self.fault_totals
        finally:
            for process in list(self.processes):
                await self.stop(process)
            await asyncio.to_thread(self.db.drop)
        self.results["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return self.results

    async def one_process(self):
        p = self.p
        server = await self.start(self.store_process("store"))
        await self.start_worker(server)
        await self.webhooks_to(server)
        self.store = Store(server.port, self.recorder)
        await self.store.open_carts(p.carts)
        await self.store.start_checkouts(p.checkouts_per_second)
        self.store.mark_synced()
        await self.store.open_tabs(p.tabs_per_cart)
        self.fault_totals = Counter()
        self.fault_seen = Counter(await self.sandbox_call("GET", "/_sandbox/faults/stats"))
        await self.phase("warm-up", server, p.search_rates[0], min(3, p.phase_seconds), keep=False)
        await self.search(server)
        for rate in p.rates:
            await self.phase(f"{rate}/s", server, rate, p.phase_seconds, profile=rate == max(p.rates))
        compare = self.results["compare_rate"]
        await self.sandbox_call("POST", "/_sandbox/faults", {"latency": SLOW_STRIPE["latency"]})
        await self.phase(f"slow Stripe {compare}/s", server, compare, p.phase_seconds)
        await self.sandbox_call("POST", "/_sandbox/faults", {"latency": REALISTIC_STRIPE["latency"]})
        await self.bursts(server)
        await self.webhooks(server)
        await self.idle(server)
        await self.store.close_tabs()
        await self.stop_worker()
        await self.stop(server)

    async def phase(self, name, server, rate, seconds, profile=False, keep=True, settle=True):
        """Offer `rate` changes/s for `seconds` through `server`; record everything under `name`."""
        await self.sandbox_call("DELETE", "/_bench/meter")
        worker = self.worker.process.pid if self.worker else None
        cpu0, load0, t0 = cpu_seconds(server.process.pid), time.process_time(), time.monotonic()
        worker0 = cpu_seconds(worker) if worker else None
        spy = None
        if profile and self.py_spy:
            output = self.results_dir / f"profile-{name.replace('/', '_').replace(' ', '-')}.raw"
            spy = asyncio.create_task(cpu_profile.record(self.py_spy, server.process.pid, seconds, output))
        elapsed = await self.store.drive(rate, seconds, name)
        cpu, load = cpu_seconds(server.process.pid) - cpu0, time.process_time() - load0
        lagging = await self.store.wait_delivered(10)
        unsynced = await self.store.wait_synced(self.p.settle_seconds) if settle else 0
        # The worker's share is counted until the PaymentIntents caught up: the updates the load caused.
        worker_cpu = cpu_seconds(worker) - worker0 if worker else None
        worked = time.monotonic() - t0  # the load and its settling: the worker's window
        meter = await self.sandbox_call("GET", "/_bench/meter")
        await self.count_faults()
        if not keep:
            return None
        counts = self.recorder.counts[name]
        result = {
            "push": stats(self.recorder.push[name]),
            "stale": stats(self.recorder.stale[name]),
            "response": stats(self.recorder.response[name]),
            "counts": dict(counts),
            "offered_rate": rate,
            "achieved_rate": counts["changes"] / elapsed,
            "lagging_tabs": lagging,
            "unsynced_carts": unsynced,
            "server_cpu": cpu / elapsed,
            "worker_cpu_seconds": worker_cpu,
            "worker_window_seconds": worked,
            "loadgen_cpu": load / elapsed,
            "stripe": stripe_summary(meter, t0, elapsed, counts["changes"]),
        }
        if spy is not None and await spy:
            result["profile"] = cpu_profile.summarize(output, seconds)
        self.results["phases"][name] = result
        return result

    async def count_faults(self):
        """Add the sandbox's rate_limit and lock_timeout answers since the last look to the run's totals."""
        now = Counter(await self.sandbox_call("GET", "/_sandbox/faults/stats"))
        self.fault_totals.update({k: now[k] - self.fault_seen[k] for k in ("rate_limit", "lock_timeout")})
        self.fault_seen = now

    async def search(self, server):
        """Step the change rate up until push p99 passes 50 ms, the rate is not reached, or changes fail."""
        steps = []
        for rate in self.p.search_rates:
            name = f"search {rate}/s"
            result = await self.phase(name, server, rate, self.p.search_seconds, profile=True)
            steps.append(sustained(name, result))
            if not steps[-1]["sustained"]:
                break
            result.pop("profile", None)  # the failing step's profile says why; the others' add little
        passed = [s["rate"] for s in steps if s["sustained"]]
        self.results["search"] = {"steps": steps, "max_sustained": max(passed, default=0)}
        # The side-by-side comparisons (slow Stripe, Redis, naive) run at a rate one process sustains,
        # at most the low rate, against that search step.
        fitting = [rate for rate in passed if rate <= self.p.rates[0]]
        self.results["compare_rate"] = max(fitting, default=self.p.search_rates[0])

    async def bursts(self, server):
        """Bursts of back-to-back changes on many carts at once: how many changes one update absorbs."""
        await self.sandbox_call("DELETE", "/_bench/meter")
        t0 = time.monotonic()
        changes = await self.store.burst(self.p.burst_carts, self.p.burst_changes, "bursts")
        elapsed = time.monotonic() - t0
        await self.store.wait_delivered(10)
        unsynced = await self.store.wait_synced(self.p.settle_seconds)
        meter = await self.sandbox_call("GET", "/_bench/meter")
        await self.count_faults()
        self.results["phases"]["bursts"] = {
            "push": stats(self.recorder.push["bursts"]),
            "stale": stats(self.recorder.stale["bursts"]),
            "offered_rate": changes / elapsed,
            "achieved_rate": self.recorder.counts["bursts"]["changes"] / elapsed,
            "unsynced_carts": unsynced,
            "stripe": stripe_summary(meter, t0, elapsed, changes),
        }

    async def webhooks(self, server):
        p = self.p
        hooks = Webhooks(server.port, self.webhook_secret, self.store.carts, p.webhook_connections)
        try:
            times, counts = await hooks.open_loop(p.webhook_rate, p.webhook_seconds, Webhooks.ACK_KINDS)
            best, best_counts = await hooks.closed_loop(p.webhook_seconds, Webhooks.ACK_KINDS)
            read_rate = p.state_webhook_rate
            read_kinds = ("payment_intent.processing",)
            read_times, read_counts = await hooks.open_loop(read_rate, p.webhook_seconds, read_kinds)
        finally:
            hooks.close()
        await self.count_faults()
        self.results["webhooks"] = {
            "ack": stats(times),
            "max_per_second": best,
            "read": stats(read_times),
            "read_rate": read_rate,
            "ack_errors": errors(counts) + errors(best_counts),
            "read_errors": errors(read_counts),
            "counts": {"ack": dict(counts), "closed_loop": dict(best_counts), "read": dict(read_counts)},
        }

    async def idle(self, server):
        """Tabs that only listen: how many one process holds, and what each costs in memory."""
        before = server.rss_kib()
        tabs, failed = await open_idle_tabs(server.port, self.p.idle_tabs, 4)
        after = server.rss_kib()
        await asyncio.sleep(self.p.idle_hold_seconds)
        held = sum(1 for tab in tabs if not tab.closed.is_set())
        await asyncio.gather(*(tab.close() for tab in tabs))
        self.results["idle"] = {
            "asked": self.p.idle_tabs,
            "held": held,
            "connect_errors": dict(failed),
            "kib_per_connection": (after - before) / len(tabs) if tabs else None,
            "total_tabs": held + self.results["tabs"],
            "rss_before_kib": before,
            "rss_after_kib": after,
        }

    async def two_processes(self):
        """The same shoppers, changes through process 1, every tab on process 2, pushes through Redis."""
        extra = {"queue": REDIS_URL, "channel": self.channel}
        first = self.store_process("cluster-1", **extra)
        second = self.store_process("cluster-2", **extra)
        await asyncio.gather(self.start(first), self.start(second))
        await self.start_worker(first)
        await self.webhooks_to(first)
        self.store.repoint(first.port)
        await self.store.open_tabs(self.p.tabs_per_cart, port=second.port)
        compare = self.results["compare_rate"]
        await self.phase("cluster warm-up", first, compare, min(3, self.p.phase_seconds), keep=False)
        await self.phase(f"cluster {compare}/s", first, compare, self.p.phase_seconds)
        await self.store.close_tabs()
        await self.stop_worker()
        await self.stop(first)
        await self.stop(second)

    async def naive(self):
        """The storefront updating Stripe inside each change request."""
        # The naive store updates Stripe inside the request: no worker, nothing in the background.
        server = await self.start(self.store_process("naive", module="bench.naive_server"))
        await self.webhooks_to(server)
        self.store.repoint(server.port)
        await self.store.open_tabs(self.p.tabs_per_cart)
        before = Counter(self.fault_totals)
        compare = self.results["compare_rate"]
        await self.phase(f"naive {compare}/s", server, compare, self.p.phase_seconds, settle=False)
        naive = self.fault_totals - before
        self.fault_totals = before
        naive["failed"] = sum(
            1
            for kind, _, status in (await self.sandbox_call("GET", "/_bench/meter"))["log"]
            if kind == "update" and status >= 400
        )
        self.results["naive_faults"] = dict(naive)
        await self.store.close()
        await self.stop(server)

    async def floor(self):
        """The floor (bench/floor_server.py): a change's read, guarded write and emit, same tabs and rates."""
        port = free_port()
        env = {
            **os.environ,
            "PORT": str(port),
            "DATABASE_URL": self.db.url,
            "SECRET_KEY": self.secret_key,
            "MAX_CONNECTIONS": "10000",
            "PYTHONUNBUFFERED": "1",
        }
        server = await self.start(
            ServerProcess("floor", [sys.executable, "-m", "bench.floor_server"], env, self.logs, port)
        )
        self.store = Store(port, self.recorder)
        await self.store.open_carts(self.p.carts)
        await self.store.open_tabs(self.p.tabs_per_cart)
        await self.phase(
            "floor warm-up", server, self.p.rates[0], min(3, self.p.phase_seconds), keep=False, settle=False
        )
        for rate in self.p.rates:
            # Profiled where the storefront is, so that the two profiles compare.
            await self.phase(
                f"floor {rate}/s", server, rate, self.p.phase_seconds, profile=rate == max(self.p.rates), settle=False
            )
        await self.store.close()
        await self.stop(server)

    async def bare(self):
        """A bare Flask-SocketIO broadcast server with the same tabs and rates: no cart at all."""
        port = free_port()
        server = await self.start(
            ServerProcess(
                "bare",
                [sys.executable, "-m", "bench.bare_server"],
                {**os.environ, "PORT": str(port), "MAX_CONNECTIONS": "10000"},
                self.logs,
                port,
            )
        )
        self.store = Store(port, self.recorder, bare=True)
        await self.store.open_carts(self.p.carts)
        await self.store.open_tabs(self.p.tabs_per_cart)
        await self.phase(
            "bare warm-up", server, self.p.rates[0], min(3, self.p.phase_seconds), keep=False, settle=False
        )
        for rate in self.p.rates:
            await self.phase(f"bare {rate}/s", server, rate, self.p.phase_seconds, settle=False)
        await self.store.close()
        await self.stop(server)


def sustained(name, phase):
    """Whether a phase counts as sustained: rate reached, no errors or lost pushes, push p99 within 50 ms."""
    counts, push = phase.get("counts", {}), phase.get("push") or {}
    failures = [k for k in counts if k.startswith("error")]
    rate = int(name.split()[-1].removesuffix("/s"))
    checks = [
        (phase.get("achieved_rate", 0) >= 0.95 * rate, f"reached {phase.get('achieved_rate', 0):.0f}/s"),
        (not failures, f"{sum(counts[k] for k in failures)} errors"),
        (not phase.get("lagging_tabs"), f"{phase.get('lagging_tabs')} tabs lagging"),
        ((push.get("p99") or 1e9) <= report.PUSH_P99_LIMIT_MS, f"p99 {report.ms(push.get('p99'))}"),
    ]
    why = "; ".join(text for ok, text in checks if not ok)
    return {"rate": rate, "sustained": not why, "why": why}


def errors(counts):
    return sum(n for key, n in counts.items() if key.startswith("status") and not key.endswith(" 200"))


def stripe_summary(meter, start, elapsed, changes):
    """Stripe calls/s during the load, updates/s, the busiest second of updates, changes per update."""
    log = meter["log"]
    during = [entry for entry in log if start <= entry[1] <= start + elapsed]
    updates = sorted(entry[1] for entry in log if entry[0] == "update" and entry[2] == 200)
    peak, first = 0, 0
    for last, stamp in enumerate(updates):
        while stamp - updates[first] >= 1.0:
            first += 1
        peak = max(peak, last - first + 1)
    return {
        "calls_per_second": len(during) / elapsed if elapsed else 0,
        "updates_per_second": sum(1 for e in during if e[0] == "update") / elapsed if elapsed else 0,
        "peak_updates_1s": peak,
        "updates": len(updates),
        "changes_per_update": changes / len(updates) if updates else None,
        "calls": meter["calls"],
        "statuses": meter["statuses"],
        "max_in_flight_per_payment_intent": meter["max_in_flight_per_payment_intent"],
    }


async def run(profile, out, results_dir, logs):
    """Run the profile, write the markdown table (and the raw numbers next to it); returns the markdown."""
    results = await Bench(profile, logs, results_dir).run()
    text = report.markdown(results)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    return text
