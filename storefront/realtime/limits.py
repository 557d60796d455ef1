"""Limits on what one Socket.IO connection can make the server do, counted in this process.

- Rate: every Socket.IO packet a connection sends (an event, an ack, a connect) counts against
  SOCKETIO_EVENT_LIMIT, per engine.io session, in memory (the `limits` library): no network round
  trip per event. A connection over the limit is closed at once and its packets are dropped.
- Size: SOCKETIO_MAX_MESSAGE_BYTES is engine.io's own max_http_buffer_size (a larger WebSocket
  frame closes the connection). A larger polling POST is refused with 413 before engine.io sees it:
  engine.io's own refusal would wait for the client to poll first, which an attacker never does.
- Work: python-socketio runs a connection's handlers one at a time (async_handlers=False), so one
  connection has at most one event in flight; each packet first lets other green threads run; and
  handlers that read the database share SOCKETIO_DB_CONNECTIONS slots, so sockets can never hold
  more than that many of the pool's connections while HTTP requests wait.
"""

import logging
import threading
from contextlib import contextmanager

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger(__name__)


class SocketBusy(Exception):
    """No database slot for a socket handler came free in time."""


class SocketLimits:
    """The per-connection event budget and the database slots of one app's Socket.IO handlers."""

    def __init__(self, config, pool_size, sleep):
        self._limits = parse_many(config["SOCKETIO_EVENT_LIMIT"])
        self._window = FixedWindowRateLimiter(MemoryStorage())
        slots = config.get("SOCKETIO_DB_CONNECTIONS") or max(1, pool_size // 4)
        self._slots = threading.BoundedSemaphore(slots)
        self._wait = config["SOCKETIO_DB_WAIT_SECONDS"]
        self._sleep = sleep

    def allows(self, eio_sid):
        """Count one packet of this connection; False once it is over its budget."""
        return all([self._window.hit(limit, "socket", eio_sid) for limit in self._limits])

    @contextmanager
    def db_slot(self):
        """Hold one of the sockets' database slots (SocketBusy if none frees up in time)."""
        if not self._slots.acquire(timeout=self._wait):
            raise SocketBusy("the store is busy; try again")
        try:
            yield
        finally:
            self._slots.release()

    def guard(self, eio_server, handle_message):
        """engine.io's `message` handler, wrapped: over-budget connections are closed, not served."""

        def guarded(eio_sid, data):
            # A connection that always has data ready never blocks on its socket: let others run first.
            self._sleep(0)
            if eio_sid not in eio_server.sockets:
                return None  # closed by the limit: what it still sends until the close lands is dropped
            if not self.allows(eio_sid):
                log.warning("socket %s exceeded %s: disconnecting it", eio_sid, self._limits)
                _close(eio_server, eio_sid)
                return None
            return handle_message(eio_sid, data)

        return guarded


def _close(eio_server, eio_sid):
    """Close one engine.io session without waiting for the client to drain its queue (it may never poll)."""
    connection = eio_server.sockets.pop(eio_sid, None)
    if connection is not None:
        connection.close(wait=False, abort=True, reason=eio_server.reason.SERVER_DISCONNECT)


def refuse_oversized_polls(wsgi_app, max_bytes, path="/socket.io/"):
    """WSGI middleware: a polling POST declaring more than `max_bytes` is answered 413, unread."""

    def app(environ, start_response):
        length = environ.get("CONTENT_LENGTH") or "0"
        oversized = not length.isdigit() or int(length) > max_bytes
        if oversized and environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO", "").startswith(path):
            start_response("413 Request Entity Too Large", [("Content-Type", "text/plain"), ("Connection", "close")])
            return [b"Socket.IO message too large"]
        return wsgi_app(environ, start_response)

    return app


def install(app, socketio):
    """Put the limits in front of this app's Socket.IO server (after socketio.init_app)."""
    pool_size = app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_size", 5)
    limits = SocketLimits(app.config, pool_size, socketio.sleep)
    eio = socketio.server.eio
    eio.on("message", limits.guard(eio, eio.handlers["message"]))
    app.wsgi_app = refuse_oversized_polls(app.wsgi_app, app.config["SOCKETIO_MAX_MESSAGE_BYTES"])
    app.extensions["socket_limits"] = limits
    return limits
