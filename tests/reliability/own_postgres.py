"""A PostgreSQL of a test's own, in a temp dir on a free port, for tests that stop and start it (the shared
server on 5432 is never stopped)."""

import os
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest
from sqlalchemy import create_engine, text


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnPostgres:
    """A PostgreSQL 15 in a temp dir, on a free port, run as the `postgres` user (initdb refuses root)."""

    BIN = "/usr/lib/postgresql/15/bin"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pg-no-drop-")
        self.data, self.port = os.path.join(self.dir, "data"), free_port()
        shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def _run(self, tool, *args):
        command = ["runuser", "-u", "postgres", "--", f"{self.BIN}/{tool}", *args]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self):
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", self.data, "-o", options, "-l", os.path.join(self.dir, "log"), "-w", "start")

    def stop(self):
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def database(self):
        name = f"store_{uuid.uuid4().hex[:12]}"
        admin = create_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)


def serve():
    """A running OwnPostgres, removed after (for a fixture to yield from); skips where none can run."""
    if shutil.which("runuser") is None or not os.path.exists(f"{OwnPostgres.BIN}/initdb") or os.geteuid() != 0:
        pytest.skip("needs root, runuser and PostgreSQL 15's initdb to run a PostgreSQL of the test's own")
    server = OwnPostgres()
    try:
        yield server
    finally:
        server.remove()
