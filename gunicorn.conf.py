"""gunicorn's hooks for `gunicorn … production:app` (read from the working directory): the store's worker, if asked.

In production the worker is its own supervised service (deploy/systemd, deploy/supervisor) and
the web processes run at WORKER=off, production's default. WORKER=process opts in to a one-command store:
the master then starts one `flask --app storefront worker` beside its web worker (which does no
background work itself), restarts it with a backoff when it dies, and stops it when gunicorn stops.
gunicorn's master reaps every child it has, ours included, so the restart's log line may read "exited
with code 0" whatever ended it: a supervisor (deploy/) reports the real cause.
"""

import os

from worker_process import start_worker, worker_mode

_children = []

# gunicorn would believe X-Forwarded-Proto from 127.0.0.1 by default (forwarded_allow_ips): off, so the one
# setting that decides which forwarded headers count is the app's TRUSTED_PROXY_HOPS (storefront/proxy.py).
secure_scheme_headers = {}


def on_starting(server):
    """Before the web worker forks: it inherits WORKER=off when the worker runs beside it."""
    if worker_mode(default="off") == "process":
        os.environ["WORKER"] = "off"
        _children.append(start_worker())


def on_exit(server):
    """gunicorn is stopping: the worker finishes the Stripe updates it started, then stops."""
    for child in _children:
        child.stop()
