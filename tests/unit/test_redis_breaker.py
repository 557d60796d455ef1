"""The Redis breaker: skip a failed Redis for a while, let one caller try it again, one log line each way."""

import logging

from storefront.redis_pools import Breaker, where


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_failure_skips_redis_until_the_retry_time_then_lets_one_caller_try():
    clock = Clock()
    breaker = Breaker("redis-under-test", retry_seconds=5, clock=clock)
    assert breaker.allows() and breaker.allows()
    breaker.failed(TimeoutError("Timeout reading from socket"))
    clock.now += 4.9
    assert not breaker.allows()
    clock.now += 0.2
    assert breaker.allows()  # this caller tries Redis again...
    assert not breaker.allows()  # ...while the others go on skipping it
    breaker.failed(TimeoutError("still hung"))
    clock.now += 5.1
    assert breaker.allows()
    breaker.succeeded()
    assert breaker.allows() and breaker.allows() and not breaker.down


def test_an_outage_logs_one_line_when_it_starts_and_one_when_redis_answers(caplog):
    clock = Clock()
    breaker = Breaker("redis-under-test", retry_seconds=1, clock=clock)
    breaker.succeeded()  # a healthy Redis answering logs nothing
    with caplog.at_level(logging.INFO, logger="storefront.redis_pools"):
        for _ in range(20):
            if breaker.allows():
                breaker.failed(TimeoutError("Timeout reading from socket"))
            clock.now += 0.25
        breaker.allows()
        breaker.succeeded()
        breaker.succeeded()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2, lines
    assert "redis-under-test failed (TimeoutError: Timeout reading from socket): going on without it" in lines[0]
    assert "redis-under-test answers again after 5.0s; 15 calls went without it" in lines[1]


def test_logs_name_the_redis_without_its_password():
    assert where("redis://:s3cret@cache.internal:6380/2") == "cache.internal:6380/2"
    assert where("rediss://user:s3cret@cache.internal") == "cache.internal:6379/0"
