"""The Socket.IO message queue on Redis, which no request ever waits for.

python-socketio's RedisManager delivers an emit to this process's tabs, then publishes it for the
other processes on the caller's thread: a hung Redis held every change, handshake and new tab (whose
connect emits the cart) and every webhook's order push for as long as it hung. Here the publish is
handed to one sender per process, which publishes with a deadline (REDIS_TIMEOUT_SECONDS) behind the
process's Redis breaker. While Redis is skipped, the newest push of each room waits (pushes carry the
whole cart or order, so the newest is all a tab needs) and is published once Redis answers again: tabs
on other processes catch up, besides re-reading the cart on reconnect. The listening side is
python-socketio's own, on a connection without a read timeout (see redis_pools.listener_options).
"""

import collections
import logging
import queue
import threading

import redis
import socketio

from .. import redis_pools

log = logging.getLogger(__name__)

# Messages waiting for the sender; past it (the sender starved), a push is dropped.
OUTBOX_LIMIT = 10_000
# Rooms whose newest push waits for Redis to answer again; past it, the oldest rooms' are dropped.
CATCH_UP_LIMIT = 10_000


class BestEffortRedisManager(socketio.RedisManager):
    """A RedisManager whose publishes never block the emitter and catch up after Redis comes back."""

    def __init__(self, url, channel, *, write_only, timeout, breaker):
        super().__init__(
            url, channel=channel, write_only=write_only, redis_options=redis_pools.listener_options(max(timeout, 1.0))
        )
        self._sender_client = redis.Redis.from_url(url, **redis_pools.deadline_options(timeout))
        self._breaker = breaker
        self._outbox = None
        self._outbox_lock = threading.Lock()
        self._waiting = collections.OrderedDict()  # catch-up key -> payload, oldest first
        self._idle_seconds = breaker.retry_seconds  # how often waiting pushes are retried when nothing new comes
        self._overflowing = False

    def _publish(self, data):
        """Hand the message to the sender; never waits (serialisation errors still raise here)."""
        if self._outbox is None:
            self._start_sender()
        if self._outbox.qsize() >= OUTBOX_LIMIT:
            if not self._overflowing:
                log.warning("Socket.IO pushes: %d waiting for Redis, dropping more", OUTBOX_LIMIT)
            self._overflowing = True
            return
        self._overflowing = False
        self._outbox.put((catch_up_key(data), self.json.dumps(data)))

    def _start_sender(self):
        with self._outbox_lock:
            if self._outbox is not None:
                return
            if self.server is not None:  # green threads and queues of the server's async mode
                self._outbox = self.server.eio.create_queue()
                self.server.start_background_task(self._send_forever)
            else:  # a write-only emitter outside a server (the `flask worker` process): threads
                self._outbox = queue.Queue()
                threading.Thread(target=self._send_forever, name="socketio-redis-sender", daemon=True).start()

    def _send_forever(self):
        while True:
            try:
                key, payload = self._outbox.get(timeout=self._idle_seconds)
            except queue.Empty:
                key = payload = None  # quiet: time to try the waiting pushes again
            try:
                self.send(key, payload)
            except Exception:
                log.exception("Socket.IO pushes: the sender failed on one message; going on")

    def send(self, key, payload):
        """Publish one message (None: only the waiting ones), after the pushes waiting for Redis."""
        if key is None:
            if payload is not None and self._breaker.allows():
                self._try(payload)  # a message no later one replaces (a disconnect, a callback): sent or dropped
        else:
            self._waiting[key] = payload
            self._waiting.move_to_end(key)
            while len(self._waiting) > CATCH_UP_LIMIT:
                self._waiting.popitem(last=False)
        while self._waiting and self._breaker.allows():
            key, payload = next(iter(self._waiting.items()))
            if not self._try(payload):
                return
            if self._waiting.get(key) is payload:
                del self._waiting[key]

    def _try(self, payload):
        try:
            self._sender_client.publish(self.channel, payload)
        except redis.RedisError as err:
            self._breaker.failed(err)
            return False
        self._breaker.succeeded()
        return True


def catch_up_key(message):
    """What a later message replaces this one for (an emit of one event to one room), or None."""
    if message.get("method") != "emit" or message.get("callback") or message.get("skip_sid"):
        return None
    room = message.get("room")
    if not isinstance(room, str):
        return None
    return (message.get("namespace"), room, message.get("event"))


def push_queue(config, *, write_only=False):
    """The Socket.IO client manager for SOCKETIO_MESSAGE_QUEUE: None (pushes stay in this process) or a
    BestEffortRedisManager on the store's channel, sharing the process's breaker of that Redis."""
    url = config.get("SOCKETIO_MESSAGE_QUEUE")
    if not url:
        return None
    if not url.startswith(("redis://", "rediss://")):
        raise ValueError(f"SOCKETIO_MESSAGE_QUEUE must be a redis:// URL, not {url.split(':', 1)[0]}://…")
    timeout, retry = redis_pools.settings(config)
    return BestEffortRedisManager(
        url,
        config.get("SOCKETIO_CHANNEL", "flask-socketio"),
        write_only=write_only,
        timeout=timeout,
        breaker=redis_pools.breaker_for(url, retry),
    )
