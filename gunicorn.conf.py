"""gunicorn's hooks for `gunicorn … production:app` (read from the working directory): the store's worker.

With WORKER=process (the default when SOCKETIO_MESSAGE_QUEUE is set) the master starts one
`flask --app storefront worker` beside its web worker, which then does no background work itself,
and stops it when gunicorn stops. WORKER=embedded keeps the work in the web worker; WORKER=off runs
none here (a worker runs elsewhere, as its own service).
"""

import os

from worker_process import start_worker, stop_child, worker_mode

_children = []

# gunicorn would believe X-Forwarded-Proto from 127.0.0.1 by default (forwarded_allow_ips): off, so the one
# setting that decides which forwarded headers count is the app's TRUSTED_PROXY_HOPS (storefront/proxy.py).
secure_scheme_headers = {}


def on_starting(server):
    """Before the web worker forks: it inherits WORKER=off when the worker runs beside it."""
    if worker_mode() == "process":
        os.environ["WORKER"] = "off"
        # Processes started together migrate the schema once, under PostgreSQL's advisory lock.
        _children.append(start_worker())


def on_exit(server):
    """gunicorn is stopping: the worker finishes the Stripe updates it started, then stops."""
    for process in _children:
        stop_child(process)
