"""The Stripe update budget is one timeline in Redis, shared by every process of a store."""

import uuid

import pytest
import redis

from storefront.payments.budget import RedisBudget, update_budget

pytestmark = [pytest.mark.redis, pytest.mark.timeout(30)]


def test_two_processes_share_one_timeline_of_update_slots(redis_url):
    key = f"storefront-test-{uuid.uuid4().hex}:stripe-update-slots"
    clients = [redis.Redis.from_url(redis_url) for _ in range(2)]
    processes = [RedisBudget(client, key, per_second=1, sleep=None) for client in clients]
    try:
        waits = [processes[i % 2].reserve() for i in range(6)]
        # One slot a second whoever asks: the n-th reservation waits about n seconds.
        assert waits[0] < 0.5
        assert all(0.5 < later - earlier <= 1.0 for earlier, later in zip(waits, waits[1:], strict=False))
    finally:
        clients[0].delete(key)
        for client in clients:
            client.close()


def test_without_redis_each_process_paces_itself():
    budget = update_budget({"STRIPE_UPDATES_PER_SECOND": 0.1, "REDIS_URL": "redis://127.0.0.1:1/0"}, sleep=None)
    assert isinstance(budget, RedisBudget)
    assert budget.reserve() == 0.0 and 5.0 < budget.reserve() <= 10.0
