"""Start the store's worker (`flask --app storefront worker`) beside a server: used by wsgi.py and gunicorn.conf.py.

No storefront import here: gunicorn's master reads this before its workers fork and patch the
standard library, and wsgi.py before it builds the app.
"""

import atexit
import ctypes
import os
import signal
import subprocess
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
MODES = ("process", "embedded", "off")


def worker_mode(environ=os.environ):
    """WORKER, or by default a separate process when a message queue carries its pushes to the tabs.

    Without a queue a separate worker's pushes would reach no tab, so the work stays embedded.
    """
    mode = environ.get("WORKER") or ("process" if environ.get("SOCKETIO_MESSAGE_QUEUE") else "embedded")
    if mode not in MODES:
        raise SystemExit(f"WORKER must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def start_child(command):
    """A process that lives as long as this one: stopped when this one exits, or dies."""
    process = subprocess.Popen(command, cwd=ROOT, preexec_fn=_die_with_parent)
    atexit.register(stop_child, process)
    return process


def start_worker():
    """`flask --app storefront worker`, as a child of this process."""
    return start_child([sys.executable, "-m", "flask", "--app", "storefront", "worker"])


def stop_child(process, timeout=45):
    """SIGTERM, then wait (a worker finishes the Stripe updates it has started, for up to SYNC_LEASE_SECONDS,
    30 by default); SIGKILL past `timeout`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _die_with_parent():
    # Linux's PR_SET_PDEATHSIG: a server killed outright (no atexit) leaves no child behind.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
