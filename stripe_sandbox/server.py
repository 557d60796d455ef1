"""Run the sandbox in-process on a background thread (tests) or in the foreground (CLI)."""

from __future__ import annotations

import socket
import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app
from .state import SandboxState, Settings


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class PortUnavailable(OSError):
    """The sandbox could not listen on the address it was given."""


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, or PortUnavailable: never share a port with whatever holds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # SO_REUSEADDR lets a restart reuse a port in TIME_WAIT; Linux still refuses a port that
    # another socket is listening on.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise PortUnavailable(
            exc.errno,
            f"the Stripe sandbox cannot listen on {host}:{port}: "
            f"{exc.strerror}. Another program (perhaps another sandbox) holds "
            "it; stop it or pick another --port.",
        ) from exc
    return sock


class SandboxServer:
    """A sandbox on werkzeug's threaded server. `port=0` picks a free port.

    Other keyword arguments are `Settings` fields: secret_key, publishable_key,
    webhooks=[(url, secret[, enabled_events])], sepa_delay, webhook_retry_base,
    webhook_max_attempts, webhook_timeout, faults={...}, seed.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", *, quiet: bool = True, **settings):
        self.state = SandboxState(Settings(host=host, port=port, **settings))
        self.app = create_app(self.state)
        handler = _QuietHandler if quiet else WSGIRequestHandler
        listening = _listen(host, port)
        # werkzeug serves a duplicate of the socket; ours is closed once it has one.
        self._server = make_server(host, port, self.app, threaded=True, request_handler=handler, fd=listening.fileno())
        listening.close()
        self.port = self._server.port
        self.state.settings.port = self.port
        self.state.base_url = self.url
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.state.settings.host}:{self.port}"

    @property
    def secret_key(self) -> str:
        return self.state.settings.secret_key

    @property
    def publishable_key(self) -> str:
        return self.state.settings.publishable_key

    def start(self) -> SandboxServer:
        """Serve on a daemon thread; the socket is already listening when this returns."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="stripe-sandbox", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (the CLI)."""
        self._server.serve_forever()

    def reset(self) -> None:
        """Forget all objects, events and deliveries; keep settings and webhook endpoints."""
        self.state.reset()

    def add_webhook_endpoint(self, url: str, secret: str, enabled_events=None) -> dict:
        """Register a webhook endpoint; returns it as the control API shows it."""
        return self.state.webhooks.add_endpoint(url, secret, enabled_events).as_json()

    def stop(self) -> None:
        """Stop serving, end pending hangs and stop the webhook threads."""
        self.state.faults.release_hangs()
        self._server.shutdown()
        self._server.server_close()
        self.state.webhooks.stop()
        self.state.reset()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
