"""Redis connection pools for a green-threaded process.

redis-py's default pool opens one connection per concurrent caller and, past 100, raises
MaxConnectionsError. Under eventlet hundreds of requests can be mid-command at once (the
benchmark's 300 changes/s got 500s from the rate limiter this way), so the rate limiter and the
update budget get a bounded pool whose callers wait (greenly) for a free connection, and the push
queue, whose publishes python-socketio drops after two failures, may open as many as it needs.
"""

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

POOL_SIZE = 32
PUSH_QUEUE_CONNECTIONS = 2000


def blocking_pool(url, *, wait_seconds=2.0, **connection_options):
    """A pool of at most POOL_SIZE connections; a caller waits up to `wait_seconds` for one."""
    return redis.BlockingConnectionPool.from_url(
        url, max_connections=POOL_SIZE, timeout=wait_seconds, **connection_options
    )


def fail_fast_client(url):
    """A client that gives up quickly (one quick retry, 2 s timeouts): for callers with a local fallback."""
    return redis.Redis(
        connection_pool=blocking_pool(url, socket_timeout=2, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1))
    )


def push_queue(url, channel):
    """The Socket.IO client manager for SOCKETIO_MESSAGE_QUEUE: None (pushes stay in this process) or
    python-socketio's Redis manager, allowed as many connections as the process has concurrent emits."""
    if not url:
        return None
    if not url.startswith(("redis://", "rediss://")):
        raise ValueError(f"SOCKETIO_MESSAGE_QUEUE must be a redis:// URL, not {url.split(':', 1)[0]}://…")
    import socketio

    return socketio.RedisManager(
        url, channel=channel, write_only=False, redis_options={"max_connections": PUSH_QUEUE_CONNECTIONS}
    )
