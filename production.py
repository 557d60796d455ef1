"""The production server: `gunicorn -k gevent -w 1 --worker-connections 10000 --bind 0.0.0.0:8000 production:app`.

gevent lives only here, as eventlet lives only in wsgi.py, so the async mode stays one setting
(SOCKETIO_ASYNC_MODE, which must be `gevent` under this server). One worker per gunicorn process,
as Flask-SocketIO's deployment guide says: gunicorn's own balancing cannot keep a Socket.IO client
on one worker. Run several such processes behind a proxy with sticky sessions and a Redis message
queue (docs/production.md), and the store's worker (`flask --app storefront worker`) as its own
supervised service (deploy/): production's WORKER default is `off`. The schema is migrated by the
release step (`flask --app storefront db upgrade`), not here: on an older schema this refuses to
start, naming the revision it needs. WebSockets come from simple-websocket, which python-engineio
uses under gevent when gevent-websocket is absent; HTTP is parsed by gunicorn, which refuses ambiguous framing.
"""

from gevent import monkey

# First, before anything imports socket, ssl, threading or select (gunicorn's worker patches too;
# doing it here as well keeps `--preload` and plain imports of this module correct).
monkey.patch_all()

import gc
import logging
import os

import psycopg.waiting

# psycopg 3 picks a cooperative wait when it sees gevent's patches at import; if something imported
# it earlier, its C wait would block every greenlet while PostgreSQL answers.
if psycopg.waiting.wait is getattr(psycopg.waiting, "wait_c", None):
    psycopg.waiting.wait = psycopg.waiting.wait_select

from storefront import create_app
from storefront.schema import SchemaBehind, require_current_schema

ASYNC_MODE = os.environ.get("SOCKETIO_ASYNC_MODE", "gevent")
if ASYNC_MODE != "gevent":
    raise SystemExit(
        f"production.py runs on gunicorn's gevent worker: SOCKETIO_ASYNC_MODE must be gevent, "
        f"not {ASYNC_MODE!r} (eventlet is the demo's mode: python wsgi.py)"
    )

# This is the production server: production's checks apply (a SECRET_KEY of its own, a webhook secret,
# Secure cookies) unless STOREFRONT_ENV says otherwise (the tests serve it over plain HTTP on loopback).
os.environ.setdefault("STOREFRONT_ENV", "production")
app = create_app({"SOCKETIO_ASYNC_MODE": "gevent"})
try:
    require_current_schema(app)
except SchemaBehind as refusal:
    raise SystemExit(f"production.py refuses to serve: {refusal}") from None
if app.config["STRIPE_OFFLINE"]:
    logging.getLogger(__name__).warning(
        "no STRIPE_SECRET_KEY: talking to the offline Stripe sandbox at %s", app.config["STRIPE_API_BASE"]
    )
app.extensions["worker"].start()  # a no-op with WORKER=off
# What is built by now lives as long as the worker: keep it out of the collector's full passes.
gc.collect()
gc.freeze()
