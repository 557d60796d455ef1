"""Why each missed target missed, in words built from the run's own measurements and profile."""

from .report import cpu_per_change, ms


def explain(results):
    """{row key: why} for every row that can miss."""
    phases = results["phases"]
    low, high = (f"{rate}/s" for rate in results["rates"])
    compare = f"{results['compare_rate']}/s"
    steps = results.get("search", {}).get("steps", [])
    failing = next((f"search {s['rate']}/s" for s in steps if not s["sustained"]), high)
    why = {
        key: cpu_story(name, phases.get(name, {}))
        for key, name in (("push_100", low), ("push_300", high), ("max_rate", failing), ("bare", high))
    }
    why["push_slow"] = slow_story(
        phases.get(f"slow Stripe {compare}", {}),
        phases.get(f"search {compare}", {}),
        phases.get(f"cluster {compare}", {}),
    )
    why["stripe_rate"] = budget_story(phases.get(low, {}), phases.get(high, {}), results.get("stripe_faults", {}))
    why["coalescing"] = burst_story(phases.get("bursts", {}))
    why["webhooks"] = webhook_story(results.get("webhooks", {}))
    why["webhooks_read"] = (
        "these events are recorded and acknowledged like the others; the worker reads the PaymentIntent from "
        "Stripe afterwards (Stripe's latency, median 300 ms here, is the worker's), so what the answer waits "
        "for is the acknowledge path above, on a process that is also serving the shoppers"
    )
    per = results.get("idle", {}).get("kib_per_connection")
    why["idle_tabs"] = (
        f"{per:.0f} KB per tab as resident-memory growth: an eventlet green thread, a WebSocket, "
        "an Engine.IO socket with its queue"
        if per
        else "no idle measurement"
    )
    why["floor_cpu"] = floor_cpu_story(phases, low, high)
    why["floor_push"] = floor_push_story(phases, low)
    why["redis"] = (
        "through Redis a push is one more publish, a pub/sub read and a re-emit in the receiving "
        "process; at this rate the difference is within the run-to-run noise of the shared machine"
    )
    return why


def cpu_story(name, phase):
    """Why a phase was slow, from its CPU use and profile."""
    achieved, cpu = phase.get("achieved_rate") or 0, phase.get("server_cpu") or 0
    text = f"phase {name}: {achieved:.0f} changes/s done with the server at {cpu:.0%} of one core"
    if achieved:
        text += f" ({1000 * cpu / achieved:.1f} ms of server CPU per change, its pushes included)"
    summary = phase.get("profile")
    if summary:
        text += "; py-spy self time: " + ", ".join(f"{n} {s:.0%}" for n, s in summary["self"][:5])
        text += "; inclusive: " + ", ".join(f"`{n}` {s:.0%}" for n, s in summary["storefront"][:3])
    return text + (
        ". A change is two PostgreSQL statements (a read, and one version-guarded write that commits "
        "itself) and an emit to its room; its PaymentIntent sync runs in the worker process (its own row). "
        "What remains is per-request cost in one Python "
        "process: the eventlet hub switching green threads at every socket wait, SQLAlchemy and psycopg "
        "per statement, Flask/Werkzeug and the rate limiter per request; past the knee requests queue "
        "for the one core and latency grows to seconds. The bare server does an HTTP request and an "
        "emit."
    )


def slow_story(slow, normal, cluster):
    push, base, other = slow.get("push") or {}, normal.get("push") or {}, cluster.get("push") or {}
    return (
        f"pushes never wait for Stripe (p50 {ms(push.get('p50'))} with Stripe at 1–5 s, {ms(base.get('p50'))} "
        f"at 300 ms); this rate is one process's knee, where p99 varies run to run (the same rate gave p99 "
        f"{ms(base.get('p99'))} in the search and {ms(other.get('p99'))} in the two-process phase)"
    )


def budget_story(low, high, faults):
    means = [(p.get("stripe") or {}).get("updates_per_second", 0) for p in (low, high)]
    return (
        f"updates averaged {means[0]:.1f}/s and {means[1]:.1f}/s; the peak is counted where the sandbox "
        "receives them, and paced requests can arrive bunched while the shared machine is saturated (a "
        "process too late for its slot takes a new one, within two slots); Stripe answered "
        f"{faults.get('rate_limit', 0)} rate_limit 429s in the whole run, each retried later by the sync"
    )


def burst_story(bursts):
    pushed = ms((bursts.get("push") or {}).get("p50"))
    return (
        f"each burst is back-to-back changes on one cart (pushed in p50 {pushed}); the first change's "
        "update leaves after the 50 ms coalescing pause and a budget slot, later changes ride on the "
        "following updates; a longer SYNC_COALESCE_SECONDS trades staleness for fewer updates"
    )


def webhook_story(hooks):
    return (
        f"one process acknowledges at most {hooks.get('max_per_second', 0):.0f} events/s: each is verified "
        "(HMAC, and the SDK parses it into an Event), then recorded by one insert that commits "
        "itself (applied later by the worker); the rest is per-request CPU (Flask, the SDK's parse, "
        "SQLAlchemy) on the "
        "process's one core, and near that rate the answers queue"
    )


def floor_cpu_story(phases, low, high):
    """What the storefront spends per change beyond the floor, and where (from the py-spy profiles)."""
    parts = []
    for rate in (low, high):
        store, floor = phases.get(rate, {}), phases.get(f"floor {rate}", {})
        parts.append(
            f"at {rate} the storefront did {store.get('achieved_rate', 0):.0f} changes/s at "
            f"{ms(cpu_per_change(store))} of server CPU each, the floor {floor.get('achieved_rate', 0):.0f}/s "
            f"at {ms(cpu_per_change(floor))}"
        )
    text = "; ".join(parts) + (
        ". The floor does one read, one version-guarded write and one emit on the same stack; whatever else the "
        "storefront's web process does per change (rate limiting, the snapshot, stock and price guards, Flask's "
        "session and the service layers; the PaymentIntent sync is the worker's) is the difference, and the "
        "profiles say where it goes"
    )
    for name in (high, f"floor {high}"):
        summary = phases.get(name, {}).get("profile")
        if summary:
            text += f"; py-spy at {name}: " + ", ".join(f"{n} {s:.0%}" for n, s in summary["self"][:5])
    return text


def floor_push_story(phases, low):
    store, floor = phases.get(low, {}), phases.get(f"floor {low}", {})
    p99s = [ms((phase.get("push") or {}).get("p99")) for phase in (floor, store)]
    return (
        f"at {low} the floor pushed in p99 {p99s[0]} with its process at {floor.get('server_cpu', 0):.0%} of "
        f"one core, the storefront in {p99s[1]} at {store.get('server_cpu', 0):.0%}: a push waits behind every "
        "green thread ahead of it in its one process, so the storefront's work beyond the floor (the CPU row "
        "above) lengthens the tail, most of all near the rate where that core fills"
    )
