"""Turn a run's measurements into the table of targets: measure, target, result, met or missed."""

import math

PUSH_P99_LIMIT_MS = 50.0
FLOOR_CPU_LIMIT = 1.5  # storefront server CPU per change ÷ the floor's
FLOOR_PUSH_P99_LIMIT = 2.0  # storefront push p99 ÷ the floor's, at the low rate
MAX_RATE_TARGET = 150  # changes/s one web process sustains with push p99 within PUSH_P99_LIMIT_MS
WEBHOOK_RATE_TARGET = 300  # webhook events/s one web process acknowledges

# (key, measure, target): every run prints every row, in this order.
ROWS = [
    (
        "push_100",
        "Push latency, change → every other tab, {tabs:,} tabs, {low} changes/s (p50 / p99)",
        "≤ 3 ms / ≤ 10 ms",
    ),
    ("push_300", "Push latency, {tabs:,} tabs, {high} changes/s (p50 / p99)", "p99 ≤ 50 ms"),
    (
        "push_slow",
        "Push latency with Stripe answering in 1–5 s, {compare} changes/s (p50 / p99; at 300 ms)",
        "unchanged",
    ),
    (
        "max_rate",
        "Highest change rate one web process sustains (PaymentIntent sync in the worker)",
        "≥ 150/s, push p99 ≤ 50 ms",
    ),
    (
        "stripe_rate",
        "Stripe calls/s at {low} · {high} changes/s (PaymentIntent updates/s, peak over 1 s)",
        "updates ≤ 20/s store-wide",
    ),
    ("stripe_429", "Stripe 429s in the whole run: rate_limit / lock_timeout", "0 lock_timeout"),
    ("coalescing", "Changes per PaymentIntent update: bursts · {low}/s · {high}/s", "≥ 5 in bursts"),
    (
        "staleness",
        "Staleness, change → PaymentIntent has its amount (p50 / p99): {low}/s · {high}/s · slow Stripe",
        "reported",
    ),
    (
        "webhooks",
        "Webhooks (verify, record, acknowledge): max events/s · p50 / p99 at {webhook_rate}/s",
        "≥ 300/s, p99 ≤ 50 ms",
    ),
    (
        "webhooks_read",
        "Webhooks whose follow-up reads the PaymentIntent from Stripe, acknowledged (p50 / p99)",
        "p99 ≤ 50 ms",
    ),
    ("idle_tabs", "Idle tabs held by one process · memory per connection", "≥ 2,000 · ≤ 80 KB"),
    (
        "redis",
        "Push across processes through Redis, {compare} changes/s (p50 / p99; added vs one process)",
        "adds ≤ 1 ms",
    ),
    ("bare", "Bare Flask-SocketIO broadcast, same tabs, {low} · {high}/s (p50 / p99); storefront ÷ bare p99", "≤ 1.5×"),
    (
        "floor_cpu",
        "Server CPU per change, storefront ÷ floor (one read, one version-guarded write, one emit; "
        "same stack), {tabs:,} tabs, {low} · {high} changes/s",
        "≤ 1.5× at both rates",
    ),
    (
        "worker",
        "Worker process CPU per Stripe update (ms) at {low} · {high} changes/s, and its share of one core",
        "reported",
    ),
    (
        "floor_push",
        "Push latency of the floor, same tabs, {low} · {high}/s (p50 / p99); storefront ÷ floor p50 / p99",
        "p99 at {low}/s ≤ 2×",
    ),
    (
        "naive",
        "Naive store, Stripe inside the request, {compare}/s (p50 / p99); naive ÷ storefront p50; its 429s",
        "baseline",
    ),
    ("http", "Change request answered (p50 / p99) at {low} · {high} changes/s", "reported"),
]


def percentile(samples, share):
    """Nearest-rank percentile of a list (None for no samples)."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def stats(samples):
    return {
        "n": len(samples),
        "p50": percentile(samples, 0.50),
        "p99": percentile(samples, 0.99),
        "max": max(samples) if samples else None,
    }


def ms(value):
    if value is None:
        return "n/a"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value >= 1 else f"{value:.2f} ms"


def signed(value):
    return ("+" if value >= 0 else "−") + ms(abs(value))


def pair(s):
    return f"{ms(s['p50'])} / {ms(s['p99'])}" if s else "n/a"


def ratio(a, b):
    return a / b if a is not None and b else None


def times(x):
    return f"{x:.1f}×" if x is not None else "n/a"


def times2(x):
    """A ratio to the floor, two decimals: the targets sit at 1.5× and 2×."""
    return f"{x:.2f}×" if x is not None else "n/a"


def by(x):
    return f"×{x:.2f}" if x is not None else "n/a"


def cpu_per_change(phase):
    """Server CPU milliseconds per change done in a phase (None without changes)."""
    achieved, cpu = phase.get("achieved_rate"), phase.get("server_cpu")
    return 1000 * cpu / achieved if achieved and cpu is not None else None


def worker_share(phase):
    """The worker process's CPU over a phase and its settling, as a share of one core ("–" without a worker)."""
    seconds, window = phase.get("worker_cpu_seconds"), phase.get("worker_window_seconds")
    return f"{seconds / window:.0%}" if seconds is not None and window else "–"


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def _le(value, limit):
    return None if value is None else value <= limit


def _all(*checks):
    return None if any(c is None for c in checks) else all(checks)


class Rows:
    """Builds each row from the measurements: (result text, met?, why)."""

    def __init__(self, results):
        self.r = results
        self.phases = results["phases"]
        low, high = results["rates"]
        self.low, self.high = f"{low}/s", f"{high}/s"
        self.compare = f"{results['compare_rate']}/s"

    def phase(self, name):
        return self.phases.get(name) or {}

    def push(self, name):
        return self.phase(name).get("push")

    def push_100(self):
        s = self.push(self.low)
        return pair(s), _all(_le(s and s["p50"], 3), _le(s and s["p99"], 10))

    def push_300(self):
        s = self.push(self.high)
        return pair(s), _le(s and s["p99"], PUSH_P99_LIMIT_MS)

    def push_slow(self):
        slow, normal = self.push(f"slow Stripe {self.compare}"), self.push(f"search {self.compare}")
        if not slow or not normal or slow["p99"] is None or normal["p99"] is None:
            return pair(slow), None
        limit = max(1.5 * normal["p99"], normal["p99"] + 2)
        return f"{pair(slow)} (vs {ms(normal['p99'])} p99)", slow["p99"] <= limit

    def max_rate(self):
        search = self.r.get("search", {})
        steps = " · ".join(
            f"{s['rate']}/s {'✓' if s['sustained'] else '✗ ' + s['why']}" for s in search.get("steps", [])
        )
        best, tried = search.get("max_sustained"), [s["rate"] for s in search.get("steps", [])]
        text = f"{best}/s" if best else f"< {min(tried, default=0)}/s"
        return f"{text} ({steps})", _le(MAX_RATE_TARGET, best or 0)

    def stripe_rate(self):
        parts, peaks = [], []
        for name in (self.low, self.high):
            stripe = self.phase(name).get("stripe") or {}
            parts.append(
                f"{stripe.get('calls_per_second', 0):.1f} ({stripe.get('updates_per_second', 0):.1f}, "
                f"peak {stripe.get('peak_updates_1s', 0)})"
            )
            peaks.append(stripe.get("peak_updates_1s"))
        peak = max((p for p in peaks if p is not None), default=None)
        return " · ".join(parts), _le(peak, 20)

    def stripe_429(self):
        faults = self.r.get("stripe_faults", {})
        lock = faults.get("lock_timeout", 0)
        return f"{faults.get('rate_limit', 0)} / {lock}", lock == 0

    def coalescing(self):
        values = [self.phase(n).get("stripe", {}).get("changes_per_update") for n in ("bursts", self.low, self.high)]
        text = " · ".join(f"{v:.1f}" if v else "n/a" for v in values)
        return text, None if values[0] is None else values[0] >= 5

    def staleness(self):
        parts = []
        for name in (self.low, self.high, f"slow Stripe {self.compare}"):
            phase = self.phase(name)
            unsynced = phase.get("unsynced_carts")
            parts.append(pair(phase.get("stale")) + (f" ({unsynced} carts still stale)" if unsynced else ""))
        return " · ".join(parts), None

    def webhooks(self):
        hooks = self.r.get("webhooks", {})
        ack, best = hooks.get("ack"), hooks.get("max_per_second")
        text = f"{best or 0:.0f}/s · {pair(ack)}"
        if hooks.get("ack_errors"):
            text += f" ({hooks['ack_errors']} errors)"
        return text, _all(_le(WEBHOOK_RATE_TARGET, best or 0), _le(ack and ack["p99"], 50), not hooks.get("ack_errors"))

    def webhooks_read(self):
        hooks = self.r.get("webhooks", {})
        state = hooks.get("read")
        text = f"{pair(state)} at {hooks.get('read_rate', 0)}/s" + (
            f" ({hooks['read_errors']} errors)" if hooks.get("read_errors") else ""
        )
        return text, _le(state and state["p99"], 50)

    def idle_tabs(self):
        idle = self.r.get("idle", {})
        held, per = idle.get("held"), idle.get("kib_per_connection")
        total = idle.get("total_tabs")
        text = f"{held or 0} held ({total or 0} open in all) · {per:.0f} KB" if per is not None else f"{held or 0} held"
        return text, _all(_le(2000, held or 0), _le(per, 80))

    def redis(self):
        cross, single = self.push(f"cluster {self.compare}"), self.push(f"search {self.compare}")
        if not cross or not single or cross["p50"] is None or single["p50"] is None:
            return pair(cross), None
        added = cross["p50"] - single["p50"]
        return f"{pair(cross)} ({signed(added)} p50, {signed(cross['p99'] - single['p99'])} p99)", added <= 1

    def bare(self):
        b100, b300 = self.push(f"bare {self.low}"), self.push(f"bare {self.high}")
        store100, store300 = self.push(self.low), self.push(self.high)
        ratios = [ratio(s and s["p99"], b and b["p99"]) for s, b in ((store100, b100), (store300, b300))]
        text = f"{pair(b100)} · {pair(b300)}; ×{times(ratios[0])[:-1]} · ×{times(ratios[1])[:-1]}"
        return text, _all(*(_le(x, 1.5) for x in ratios))

    def floor_cpu(self):
        parts, ratios = [], []
        for rate in (self.low, self.high):
            store, floor = cpu_per_change(self.phase(rate)), cpu_per_change(self.phase(f"floor {rate}"))
            ratios.append(ratio(store, floor))
            parts.append(f"{rate}: {ms(store)} ÷ {ms(floor)} = {times2(ratios[-1])}")
        return " · ".join(parts), _all(*(_le(x, FLOOR_CPU_LIMIT) for x in ratios))

    def worker(self):
        parts = []
        for rate in (self.low, self.high):
            phase = self.phase(rate)
            seconds, updates = phase.get("worker_cpu_seconds"), (phase.get("stripe") or {}).get("updates")
            per = 1000 * seconds / updates if seconds is not None and updates else None
            parts.append(f"{rate}: {ms(per)} ({worker_share(phase)} of a core)")
        return " · ".join(parts), None

    def floor_push(self):
        parts, ratios = [], []
        for rate in (self.low, self.high):
            store, floor = self.push(rate), self.push(f"floor {rate}")
            p50, p99 = (ratio(store and store[k], floor and floor[k]) for k in ("p50", "p99"))
            ratios.append(p99)
            parts.append(f"{pair(floor)} ({by(p50)} / {by(p99)})")
        return " · ".join(parts), _le(ratios[0], FLOOR_PUSH_P99_LIMIT)

    def naive(self):
        naive, store = self.push(f"naive {self.compare}"), self.push(f"search {self.compare}")
        faults = self.r.get("naive_faults", {})
        text = (
            f"{pair(naive)}; {times(ratio(naive and naive['p50'], store and store['p50']))}; "
            f"{faults.get('rate_limit', 0)} rate_limit 429s, {faults.get('failed', 0)} changes Stripe refused"
        )
        return text, None

    def http(self):
        return " · ".join(pair(self.phase(n).get("response")) for n in (self.low, self.high)), None


def _numbers(results):
    low, high = results["rates"]
    return {
        "tabs": results["tabs"],
        "low": low,
        "high": high,
        "compare": results["compare_rate"],
        "webhook_rate": results["webhook_rate"],
    }


def labels(results):
    """Every row's measure, with this run's numbers in it."""
    return [measure.format(**_numbers(results)) for _, measure, _ in ROWS]


def targets(results):
    """Every row's target, with this run's rates in it."""
    return [target.format(**_numbers(results)) for _, _, target in ROWS]


def build(results):
    """[(key, measure, target, result, met)] for every row."""
    rows = Rows(results)
    return [
        (key, measure, target, *getattr(rows, key)())
        for (key, _, _), measure, target in zip(ROWS, labels(results), targets(results), strict=True)
    ]


def markdown(results, built=None):
    """The whole report: machine, table, what missed and why, and the profile."""
    from .explain import explain  # explain words its reasons with this module's formatting

    built = built or build(results)
    machine = results["machine"]
    lines = [
        f"# Benchmark — profile `{results['profile']}`, {results['finished']}",
        "",
        f"Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['memory']} RAM, "
        f"Python {machine['python']}, {machine['kernel']}. Server, load generator, Stripe sandbox, "
        "PostgreSQL and Redis all share it.",
        f"Stripe sandbox: latency median 300 ms / p99 1.5 s (slow phase: 1–5 s), 25 requests/s per endpoint, "
        f"overlapping PaymentIntent writes fail with lock_timeout. Tabs: {results['tabs']} "
        f"({results['carts']} carts × {results['tabs_per_cart']}).",
        "",
        "| Measure | Target | Result | Met? |",
        "|---|---|---|---|",
    ]
    lines += [f"| {measure} | {target} | {result} | {verdict(ok)} |" for _, measure, target, result, ok in built]
    lines += ["", "## Targets missed, and why", ""]
    missed = [(key, measure) for key, measure, _, _, ok in built if ok is False]
    why = explain(results)
    lines += [f"- **{measure}**: {why.get(key, 'see the profile below')}" for key, measure in missed]
    if not missed:
        lines.append("- none")
    lines += [
        "",
        "## Phases",
        "",
        "| Phase | offered/s | achieved/s | push p50 / p99 | server CPU | "
        "server CPU per change | worker CPU | load generator CPU | Stripe calls/s | lagging tabs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, phase in results["phases"].items():
        stripe = phase.get("stripe") or {}
        lines.append(
            f"| {name} | {phase.get('offered_rate', 0):.0f} | {phase.get('achieved_rate', 0):.0f} | "
            f"{pair(phase.get('push'))} | {phase.get('server_cpu', 0):.0%} | {ms(cpu_per_change(phase))} | "
            f"{worker_share(phase)} | {phase.get('loadgen_cpu', 0):.0%} | {stripe.get('calls_per_second', 0):.1f} | "
            f"{phase.get('lagging_tabs', 0)} |"
        )
    lines += profile_lines(results)
    return "\n".join(lines) + "\n"


def profile_lines(results):
    lines = []
    for name, phase in results["phases"].items():
        summary = phase.get("profile")
        if not summary:
            continue
        lines += [
            "",
            f"## Where the server's CPU goes — py-spy, phase {name}",
            "",
            f"Busy {summary['busy']:.0%} of one core ({summary['samples']} samples). Self time by library: "
            + ", ".join(f"{n} {share:.0%}" for n, share in summary["self"])
            + ".",
            (
                "Inclusive, storefront functions: "
                + ", ".join(f"`{n}` {share:.0%}" for n, share in summary["storefront"])
                + "."
            )
            if summary["storefront"]
            else "(No storefront code in this process.)",
        ]
    if not lines:
        lines = ["", "(No CPU profile: install py-spy to get one — see docs/scale.md.)"]
    return lines
