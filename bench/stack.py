"""Processes of a running store: free ports, `python wsgi.py` with its environment, readiness, memory."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    """A TCP port nothing listens on right now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def store_env(*, port, database_url, sandbox_port, webhook_secret, secret_key, queue=None, channel=None, **extra):
    """The environment of one `python wsgi.py` store process using an external sandbox."""
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": database_url,
        "STRIPE_SANDBOX_EXTERNAL": "1",
        "STRIPE_SANDBOX_PORT": str(sandbox_port),
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "SECRET_KEY": secret_key,
        "SEED_CATALOG": "1",
        "SOCKETIO_ASYNC_MODE": "eventlet",
        "PYTHONUNBUFFERED": "1",
        # Plain HTTP on loopback: the session cookie must not be Secure (production.py defaults to production).
        "STOREFRONT_ENV": "development",
    }
    env.pop("STRIPE_SECRET_KEY", None)
    if queue:
        env["SOCKETIO_MESSAGE_QUEUE"] = queue
    if channel:
        env["SOCKETIO_CHANNEL"] = channel
    env.update({key: str(value) for key, value in extra.items()})
    return env


def production_args(bind):
    """gunicorn's arguments in docs/production.md: one gevent worker per process."""
    return [
        "-k",
        "gevent",
        "-w",
        "1",
        "--worker-connections",
        "10000",
        "--keep-alive",
        "75",
        "--no-control-socket",
        "--bind",
        bind,
        "production:app",
    ]


class ServerProcess:
    """A child process serving HTTP on loopback, its output kept in a log file."""

    def __init__(self, name, command, env, log_dir, port):
        self.name, self.port, self.env = name, port, env
        self.url = f"http://127.0.0.1:{port}" if port else None
        self.log_path = Path(log_dir) / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    @classmethod
    def store(cls, name, env, log_dir):
        """`python wsgi.py` with `env` (see store_env)."""
        return cls(name, [sys.executable, "wsgi.py"], env, log_dir, int(env["PORT"]))

    @classmethod
    def production(cls, name, env, log_dir):
        """The production command (docs/production.md): gunicorn's gevent worker serving production:app."""
        port = int(env["PORT"])
        command = [sys.executable, "-m", "gunicorn", *production_args(f"127.0.0.1:{port}"), "--graceful-timeout", "5"]
        return cls(name, command, {**env, "SOCKETIO_ASYNC_MODE": "gevent"}, log_dir, port)

    @classmethod
    def worker(cls, name, env, log_dir):
        """`flask --app storefront worker` with a store's environment: its background work, in its own process."""
        command = [sys.executable, "-m", "flask", "--app", "storefront", "worker"]
        return cls(name, command, env, log_dir, None)

    def wait_ready(self, path="/api/products", timeout=60.0):
        """Wait until `path` answers 200; fail with the log's tail if the process dies or never answers.
        A process without HTTP (the worker) is ready once it has started and is still running."""
        if self.port is None:
            time.sleep(2)
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + path, timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {path} within {timeout}s:\n{self.log_tail()}")

    def rss_kib(self):
        """Resident memory of the process, in KiB."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def log_tail(self, lines=40):
        if not self._log.closed:
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self):
        """Terminate (then kill) the process and close its log."""
        stop_process(self.process)
        self._log.close()


def stop_process(process):
    """Terminate a child process, then kill it if it has not ended within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
