"""Run the storefront under eventlet: `python wsgi.py`.

Eventlet lives only here, so the async mode stays one setting (SOCKETIO_ASYNC_MODE). With no
STRIPE_SECRET_KEY this also starts the offline Stripe sandbox and points the storefront at it.

The background work (see storefront/worker) runs where WORKER says: `process` starts
`flask --app storefront worker` beside this server (the default with a SOCKETIO_MESSAGE_QUEUE, which
carries the worker's pushes to the tabs) and restarts it, with a backoff, whenever it dies; `embedded`
runs it inside this server (the default without a queue: a separate worker's pushes would reach no
tab), `off` runs none. The demo migrates its database itself when it starts (MIGRATE_ON_START).
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # known: see README, "Async mode"

import eventlet

eventlet.monkey_patch()

import gc
import json
import os
import secrets
import signal
import sys
import time
import urllib.request

import psycopg.waiting

# psycopg 3 waits in C unless told otherwise, which would block every green thread.
psycopg.waiting.wait = psycopg.waiting.wait_select

from storefront import create_app
from worker_process import start_child, start_worker, worker_mode
from storefront.extensions import socketio
from storefront.schema import SchemaBehind, require_current_schema


def start_sandbox(port, webhook_url, webhook_secret):
    """The offline Stripe sandbox in its own process, delivering webhooks to this server."""
    command = [
        sys.executable,
        "-m",
        "stripe_sandbox",
        "--port",
        str(port),
        "--webhook-url",
        webhook_url,
        "--webhook-secret",
        webhook_secret,
    ]
    process = start_child(command)
    # SIGTERM ends this process through SystemExit, so the atexit hooks stop the children too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"the Stripe sandbox exited with code {process.returncode}; "
                f"is port {port} taken? Set STRIPE_SANDBOX_PORT to a free one."
            )
        # Ready means *our* sandbox answers: whatever else holds the port must not be used.
        if _sandbox_pid(port) == process.pid:
            return process
        time.sleep(0.1)
    raise SystemExit("the Stripe sandbox did not start within 20 seconds")


def _sandbox_pid(port):
    """The process id of the sandbox answering on port, or None."""
    # Straight to loopback: an HTTP_PROXY in the environment must not answer for (or hide) our sandbox.
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(f"http://127.0.0.1:{port}/_sandbox/state", timeout=1) as answer:
            return json.load(answer).get("pid")
    except (OSError, ValueError):
        return None


def main():
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", 5000))
    offline = not os.environ.get("STRIPE_SECRET_KEY")
    if offline:
        os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_" + secrets.token_hex(24))
        if os.environ.get("STRIPE_SANDBOX_EXTERNAL") != "1":
            start_sandbox(
                int(os.environ.get("STRIPE_SANDBOX_PORT", 12111)),
                f"http://127.0.0.1:{port}/webhooks/stripe",
                os.environ["STRIPE_WEBHOOK_SECRET"],
            )
    # The demo's merchant pages: a fresh password per start unless one is given (production sets its own,
    # or leaves ADMIN_PASSWORD unset and /admin off).
    admin_password = os.environ.get("ADMIN_PASSWORD")
    if not admin_password and os.environ.get("STOREFRONT_ENV") != "production":
        admin_password = os.environ["ADMIN_PASSWORD"] = secrets.token_urlsafe(12)
        print(f"Admin: http://{host}:{port}/admin (user admin, password {admin_password})", flush=True)
    mode = worker_mode()
    if mode == "process":
        os.environ["WORKER"] = "off"  # this server does no background work: its worker process does
    app = create_app({"SOCKETIO_ASYNC_MODE": os.environ.get("SOCKETIO_ASYNC_MODE", "eventlet")})
    try:
        require_current_schema(app)  # only with MIGRATE_ON_START=0 can the schema be behind here
    except SchemaBehind as refusal:
        raise SystemExit(f"wsgi.py refuses to serve: {refusal}") from None
    if mode == "process":
        start_worker()  # after create_app: the schema is migrated by then; restarted if it dies
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app.extensions["worker"].start()
    # Everything built so far lives as long as the process: keep it out of the collector's full passes,
    # each of which would otherwise walk it all while every green thread waits.
    gc.collect()
    gc.freeze()
    stripe = "offline Stripe sandbox" if offline else "Stripe test mode"
    print(f"Storefront ({stripe}, worker {mode}) on http://{host}:{port}/", flush=True)
    # Every open tab holds one of eventlet's connections, and eventlet serves 1,024 at once unless told.
    max_connections = int(os.environ.get("MAX_CONNECTIONS", 10000))
    # No eventlet access lines: the app logs one per request (ACCESS_LOG, storefront/logs.py), with its request id.
    socketio.run(app, host=host, port=port, log_output=False, max_size=max_connections)


if __name__ == "__main__":
    main()
