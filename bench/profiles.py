"""How much load each profile offers and for how long (the targets do not change with the profile)."""

from dataclasses import dataclass

REALISTIC_STRIPE = {
    "latency": {"median_ms": 300, "p99_ms": 1500},
    "rate_limit": {"per_endpoint_rps": 25},
    "lock_timeout": True,
}
SLOW_STRIPE = {"latency": {"min_ms": 1000, "max_ms": 5000}}


@dataclass(frozen=True)
class Profile:
    name: str
    carts: int = 250
    tabs_per_cart: int = 4
    phase_seconds: float = 30
    rates: tuple = (100, 300)
    search_rates: tuple = (25, 50, 75, 100, 150, 200, 300, 400, 600)
    search_seconds: float = 20
    burst_carts: int = 50
    burst_changes: int = 10
    webhook_rate: int = 200
    webhook_seconds: float = 15
    webhook_connections: int = 32
    state_webhook_rate: int = 20
    idle_tabs: int = 2000
    idle_hold_seconds: float = 30
    settle_seconds: float = 60
    checkouts_per_second: float = 15
    profile_cpu: bool = True


PROFILES = {
    "full": Profile("full"),
    "quick": Profile(
        "quick",
        phase_seconds=10,
        search_rates=(25, 50, 100, 200, 300, 400),
        search_seconds=8,
        burst_carts=30,
        webhook_seconds=6,
        idle_hold_seconds=5,
        settle_seconds=40,
    ),
    "smoke": Profile(
        "smoke",
        carts=4,
        tabs_per_cart=2,
        phase_seconds=1.5,
        rates=(10, 20),
        search_rates=(5, 10),
        search_seconds=1.5,
        burst_carts=2,
        burst_changes=5,
        webhook_rate=20,
        webhook_seconds=1,
        webhook_connections=2,
        state_webhook_rate=5,
        idle_tabs=8,
        idle_hold_seconds=0.5,
        settle_seconds=8,
        checkouts_per_second=10,
        profile_cpu=False,
    ),
}
