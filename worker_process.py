"""Start the store's worker (`flask --app storefront worker`) beside a server, and restart it when it dies:
used by wsgi.py (the demo) and, when WORKER=process is asked for, by gunicorn.conf.py.

In production the worker is its own service under a supervisor (deploy/systemd, deploy/supervisor);
this is for a store that runs as one command.

No storefront import here: gunicorn's master reads this before its workers fork and patch the
standard library, and wsgi.py before it builds the app.
"""

import atexit
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.abspath(__file__))
MODES = ("process", "embedded", "off")
WORKER_COMMAND = [sys.executable, "-m", "flask", "--app", "storefront", "worker"]
# Restarts wait 1 s, then twice as long after each quick death, up to 30 s: a worker that crashes at
# start (Redis unreachable, a schema the code refuses) is retried, never in a tight loop.
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 30.0
# A child that lived this long was running fine: its next death waits FIRST_BACKOFF again.
STABLE_SECONDS = 60.0

log = logging.getLogger("storefront.worker_process")


def worker_mode(environ=os.environ, default=None):
    """WORKER, or `default`, or a separate process when a message queue carries its pushes to the tabs.

    Without a queue a separate worker's pushes would reach no tab, so the work stays embedded.
    """
    fallback = default or ("process" if environ.get("SOCKETIO_MESSAGE_QUEUE") else "embedded")
    mode = environ.get("WORKER") or fallback
    if mode not in MODES:
        raise SystemExit(f"WORKER must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def start_child(command):
    """A process that lives as long as this one: stopped when this one exits, or dies."""
    process = subprocess.Popen(command, cwd=ROOT, preexec_fn=_die_with_parent)
    atexit.register(stop_child, process)
    return process


def start_worker(name="worker"):
    """`flask --app storefront worker` as a child of this process, restarted whenever it dies."""
    child = SupervisedChild(name, WORKER_COMMAND)
    child.start()
    atexit.register(child.stop)
    return child


class SupervisedChild:
    """A child process restarted when it exits (logged, with a growing backoff) until stop()."""

    def __init__(self, name, command, spawn=None, first_backoff=FIRST_BACKOFF, max_backoff=MAX_BACKOFF):
        self.name, self.command = name, command
        self._spawn = spawn or (lambda command: subprocess.Popen(command, cwd=ROOT, preexec_fn=_die_with_parent))
        self._first, self._max = first_backoff, max_backoff
        self._stopping = threading.Event()
        self.process, self.restarts = None, 0

    def start(self):
        """Start the child and the thread that watches it."""
        self.process = self._spawn(self.command)
        threading.Thread(target=self._watch, name=f"{self.name}-supervisor", daemon=True).start()
        return self

    def _watch(self):
        backoff = self._first
        while not self._stopping.is_set():
            started = time.monotonic()
            code = self._wait_exit()
            if code is None:  # stopped while it ran
                return
            if time.monotonic() - started >= STABLE_SECONDS:
                backoff = self._first
            log.warning("%s exited with %s; restarting in %gs", self.name, describe_exit(code), backoff)
            if self._stopping.wait(backoff):
                return
            self.process = self._spawn(self.command)
            self.restarts += 1
            log.warning("%s restarted (pid %s)", self.name, self.process.pid)
            backoff = min(backoff * 2, self._max)

    def _wait_exit(self):
        """The child's exit code once it exits, or None once stop() is called."""
        while not self._stopping.wait(0.5):
            code = self.process.poll()
            if code is not None:
                return code
        return None

    def stop(self, timeout=45):
        """No more restarts; the child finishes the Stripe updates it started, then stops."""
        self._stopping.set()
        if self.process is not None:
            stop_child(self.process, timeout)


def describe_exit(code):
    """`code 1`, or `signal SIGKILL` for a child a signal ended."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


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
