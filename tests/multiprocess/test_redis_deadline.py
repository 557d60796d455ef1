"""A hung Redis costs the update budget and the pushes one deadline, not one per call, and pushes catch up.

Each test stops (SIGSTOP) a redis-server of its own: a hung Redis accepts connections and never answers.
"""

import json
import logging
import signal
import time
import uuid

import pytest
import redis

from storefront.payments.budget import RedisBudget, update_budget
from storefront.realtime.redis_queue import BestEffortRedisManager, push_queue
from tests.conftest import wait_for

pytestmark = [pytest.mark.timeout(60)]


def settings(url, **extra):
    return {"REDIS_TIMEOUT_SECONDS": 0.05, "REDIS_RETRY_SECONDS": 0.3, "SOCKETIO_CHANNEL": uuid.uuid4().hex, **extra}


def test_the_update_budget_paces_locally_at_once_while_redis_hangs_and_shares_it_again_after(own_redis, caplog):
    process, url = own_redis
    budget = update_budget(settings(url, REDIS_URL=url, STRIPE_UPDATES_PER_SECOND=10), sleep=None)
    assert isinstance(budget, RedisBudget) and budget.reserve() < 0.05
    with caplog.at_level(logging.WARNING, logger="storefront.redis_pools"):
        process.send_signal(signal.SIGSTOP)
        try:
            began = time.monotonic()
            waits = [budget.reserve() for _ in range(20)]
            elapsed = time.monotonic() - began
        finally:
            process.send_signal(signal.SIGCONT)
        # One deadline (0.05 s) for the outage, not one per update: the others skip Redis.
        assert elapsed < 0.5, elapsed
        # This process's own pace meanwhile: one slot every 0.1 s.
        assert all(0.05 < later - earlier < 0.15 for earlier, later in zip(waits, waits[1:], strict=False))
        time.sleep(0.4)  # past REDIS_RETRY_SECONDS: the next update asks Redis again
        # The shared timeline again (it lent no slot during the hang), not this process's, 2 s ahead by now.
        assert budget.reserve() < 0.5
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "going on without it" in lines[0] and "answers again" in lines[1], lines


def listen(url, channel):
    """A subscriber of the push channel; returns (pubsub, received payloads list, drain function)."""
    pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    received = []

    def drain():
        while (message := pubsub.get_message(timeout=0.05)) is not None:
            received.append(json.loads(message["data"]))
        return received

    return pubsub, drain


def cart_versions(messages, room):
    return [m["data"][0]["version"] for m in messages if m["room"] == room and m["event"] == "cart"]


def test_pushes_never_wait_for_a_hung_redis_and_the_newest_push_of_each_room_catches_up(own_redis):
    process, url = own_redis
    config = settings(url, SOCKETIO_MESSAGE_QUEUE=url)
    manager = push_queue(config, write_only=True)  # as the `flask worker` process emits
    assert isinstance(manager, BestEffortRedisManager)
    pubsub, drain = listen(url, config["SOCKETIO_CHANNEL"])
    try:
        manager.emit("cart", {"version": 1}, room="cart:1")
        wait_for(lambda: cart_versions(drain(), "cart:1") == [1], timeout=5, message="a push while Redis answers")

        process.send_signal(signal.SIGSTOP)
        try:
            began = time.monotonic()
            for version in range(2, 52):
                manager.emit("cart", {"version": version}, room="cart:1")
                manager.emit("cart", {"version": version}, room="cart:2")
                time.sleep(0.01)
            emitting = time.monotonic() - began
            time.sleep(1)  # the sender meets the hang, and tries again (REDIS_RETRY_SECONDS) in vain
        finally:
            process.send_signal(signal.SIGCONT)
        assert emitting < 0.5 + 0.25, emitting  # 100 emits with 0.5 s of pauses: none waited for Redis

        def caught_up():
            messages = drain()
            return cart_versions(messages, "cart:1")[-1:] == [51] and cart_versions(messages, "cart:2")[-1:] == [51]

        wait_for(caught_up, timeout=5, message="the newest push of each room, once Redis answers")
        hung = {room: [v for v in cart_versions(drain(), room) if v > 1] for room in ("cart:1", "cart:2")}
        # What left before the breaker tripped arrives late; then only the newest of each room, not 50 each.
        assert all(len(versions) <= 4 and versions[-1] == 51 for versions in hung.values()), hung
        manager.emit("cart", {"version": 52}, room="cart:1")
        wait_for(lambda: cart_versions(drain(), "cart:1")[-1] == 52, timeout=5, message="pushes flowing again")
    finally:
        pubsub.close()
