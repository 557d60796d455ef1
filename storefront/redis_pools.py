"""Redis for a green-threaded store: bounded pools, a deadline on every command, and a breaker.

Pools: redis-py's default pool opens one connection per concurrent caller and, past 100, raises
MaxConnectionsError. Under eventlet hundreds of requests can be mid-command at once (the
benchmark's 300 changes/s got 500s from the rate limiter this way), so the rate limiter and the
update budget get a bounded pool whose callers wait (greenly) for a free connection.

Deadline: a hung Redis (stopped, swapping, mid-failover) accepts connections and never answers, and
redis-py's defaults would wait for it forever (then retry three times). Every command here gives up
after REDIS_TIMEOUT_SECONDS and is not retried, because every caller has a fallback: pushes to other
processes are dropped and caught up later, the update budget paces this process alone, the rate
limiter counts in memory (Flask-Limiter's in-memory fallback).

Breaker: after a failure, the callers sharing a Redis skip it for REDIS_RETRY_SECONDS, so one caller
pays the deadline rather than every one; then a single caller tries again. One log line when Redis
starts being skipped, one when it answers again.
"""

import logging
import socket
import threading
import time
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

POOL_SIZE = 32
# Defaults of REDIS_TIMEOUT_SECONDS and REDIS_RETRY_SECONDS (see storefront/config.py).
TIMEOUT_SECONDS = 0.1
RETRY_SECONDS = 5.0
# TCP keepalive of the pub/sub listener: a peer that vanished without a word is noticed in ~25 s.
KEEPALIVE = {"TCP_KEEPIDLE": 10, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3}


def deadline_options(timeout):
    """redis-py options for a command that gives up after `timeout` seconds, connecting included, unretried."""
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 0)}


def listener_options(connect_timeout):
    """redis-py options for a pub/sub connection that waits for messages as long as it takes.

    No socket timeout: a quiet channel is not a failure (python-socketio's listener would log an error and
    resubscribe after every idle spell), and a stopped Redis resumes the stream where it left it. A Redis
    gone for good (a host lost in a failover) is what TCP keepalive finds, without traffic on the channel;
    redis-py's health_check_interval would not, as it pings only between messages, never during a wait.
    """
    options = {name: getattr(socket, name) for name in KEEPALIVE if hasattr(socket, name)}
    return {
        "socket_connect_timeout": connect_timeout,
        "socket_keepalive": True,
        "socket_keepalive_options": {options[name]: KEEPALIVE[name] for name in options},
    }


def blocking_pool(url, *, wait_seconds=2.0, **connection_options):
    """A pool of at most POOL_SIZE connections; a caller waits up to `wait_seconds` for one."""
    return redis.BlockingConnectionPool.from_url(
        url, max_connections=POOL_SIZE, timeout=wait_seconds, **connection_options
    )


def deadline_client(url, timeout):
    """A client whose every call (waiting for a pooled connection included) ends within about 2 × `timeout`."""
    return redis.Redis(connection_pool=blocking_pool(url, wait_seconds=timeout, **deadline_options(timeout)))


def settings(config):
    """(REDIS_TIMEOUT_SECONDS, REDIS_RETRY_SECONDS) of a configuration, defaulted."""
    return (
        float(config.get("REDIS_TIMEOUT_SECONDS") or TIMEOUT_SECONDS),
        float(config.get("REDIS_RETRY_SECONDS") or RETRY_SECONDS),
    )


def where(url):
    """The Redis a URL names, for logs (host, port and database; never its password)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"


class Breaker:
    """Whether to ask a Redis now: not for `retry_seconds` after it failed, then by one caller at a time."""

    def __init__(self, name, retry_seconds, clock=time.monotonic):
        self.name, self.retry_seconds, self._clock = name, retry_seconds, clock
        self._lock = threading.Lock()
        self._down_since = None
        self._skip_until = 0.0
        self.skipped = 0

    @property
    def down(self):
        return self._down_since is not None

    def allows(self):
        """True if the caller should ask Redis; False while it is being skipped."""
        if self._down_since is None:
            return True
        with self._lock:
            now = self._clock()
            if now < self._skip_until:
                self.skipped += 1
                return False
            # This caller tries it; the others go on skipping until it has an answer.
            self._skip_until = now + self.retry_seconds
            return True

    def failed(self, err):
        """Redis failed (timed out, refused): skip it for a while; one log line when the skipping starts."""
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since, self.skipped = self._clock(), 0
            self._skip_until = self._clock() + self.retry_seconds
        if first:
            log.warning(
                "Redis %s failed (%s: %s): going on without it, trying again every %gs "
                "(pushes reach this process's tabs only; Stripe updates paced per process)",
                self.name,
                type(err).__name__,
                err,
                self.retry_seconds,
            )

    def succeeded(self):
        """Redis answered: use it again; one log line if it had been skipped."""
        if self._down_since is None:
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.warning(
                "Redis %s answers again after %.1fs; %d calls went without it",
                self.name,
                self._clock() - since,
                self.skipped,
            )


_breakers = {}
_breakers_lock = threading.Lock()


def breaker_for(url, retry_seconds):
    """The breaker this process shares among its callers of one Redis (pushes, update budget)."""
    with _breakers_lock:
        if url not in _breakers:
            _breakers[url] = Breaker(where(url), retry_seconds)
        return _breakers[url]
