"""The worker as its own supervised service: supervisord runs deploy/supervisor/storefront.conf as shipped
(only its paths, port and user templated), the migration first, then a production web process and the
worker. The worker is SIGKILLed; supervisord restarts it, and the PaymentIntent of a cart changed
meanwhile catches up to the cart's total, read from the Stripe sandbox. The demo (`python wsgi.py`) does
the same for the worker child it starts itself."""

import getpass
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest
import requests

from bench.stack import ROOT, ServerProcess, free_port, store_env
from tests.conftest import wait_for
from tests.multiprocess.conftest import Shopper
from tests.multiprocess.test_worker_process import worker_children

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(240)]

BIN = Path(sys.executable).parent
SHIPPED = ROOT / "deploy" / "supervisor" / "storefront.conf"


class LoopbackShopper(Shopper):
    """Production marks the session cookie Secure; this shopper talks plain HTTP on loopback, so keeps
    sending it (a browser behind the TLS proxy would)."""

    def call(self, process, method, path, **kwargs):
        answer = super().call(process, method, path, **kwargs)
        for cookie in self.http.cookies:
            cookie.secure = False
        return answer


def templated(text, replacements):
    """The shipped text with each placeholder replaced; a placeholder gone from the file fails the test."""
    for old, new in replacements.items():
        assert old in text, f"{old!r} is no longer in the shipped file: update this test with it"
        text = text.replace(old, new)
    return text


def env_file(path, **settings):
    path.write_text("".join(f'{key}="{value}"\n' for key, value in settings.items()))
    return path


class Supervisor:
    """supervisord in the foreground on a private control socket, with the shipped storefront.conf."""

    def __init__(self, workdir, program_conf):
        self.workdir = workdir
        self.socket = Path(tempfile.mkdtemp(prefix="sv", dir="/tmp")) / "s.sock"  # AF_UNIX paths are short
        self.conf = workdir / "supervisord.conf"
        self.conf.write_text(
            textwrap.dedent(f"""\
                [supervisord]
                nodaemon=true
                user={getpass.getuser()}
                logfile={workdir}/supervisord.log
                pidfile={workdir}/supervisord.pid
                childlogdir={workdir}

                [unix_http_server]
                file={self.socket}

                [rpcinterface:supervisor]
                supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

                [supervisorctl]
                serverurl=unix://{self.socket}

                [include]
                files={program_conf}
            """)
        )
        self.log = open(workdir / "supervisord.out", "wb")  # noqa: SIM115 - closed in stop()
        # A bare environment: the programs get only what the settings file says, as on a server.
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
        self.process = subprocess.Popen(
            [BIN / "supervisord", "-c", self.conf],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ctl(self, *args):
        result = subprocess.run(
            [BIN / "supervisorctl", "-c", self.conf, *args], capture_output=True, text=True, timeout=60
        )
        return result.stdout.strip()

    def pid(self, name):
        """The running process's id, or None."""
        answer = self.ctl("pid", name)
        return int(answer) if answer.isdigit() and answer != "0" else None

    def release_log(self):
        path = self.workdir / "storefront-release.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_text(self):
        return (self.workdir / "supervisord.out").read_text(errors="replace")

    def logs(self):
        """supervisord's log and the programs' logs, for a failure's message."""
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.workdir.glob("*.log"))

    def stop(self):
        self.ctl("shutdown")
        try:
            self.process.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self.log.close()
        shutil.rmtree(self.socket.parent, ignore_errors=True)


@pytest.fixture
def supervise(postgres_url, redis_url, sandbox, tmp_path, instance_outside_the_repository):
    """supervise(database_url): supervisord running the shipped config, its production web process on `.url`."""
    started = []

    def start(database_url):
        port = free_port()
        settings = env_file(
            tmp_path / "storefront.env",
            STOREFRONT_ENV="production",  # production's own defaults: WORKER=off, MIGRATE_ON_START=0
            SECRET_KEY="test-" + secrets.token_hex(16),
            STRIPE_WEBHOOK_SECRET="whsec_" + secrets.token_hex(16),
            DATABASE_URL=database_url,
            STRIPE_SANDBOX_PORT=sandbox.port,
            SOCKETIO_MESSAGE_QUEUE=redis_url,
            SOCKETIO_CHANNEL=f"storefront-test-{uuid.uuid4().hex}",
            INSTANCE_PATH=instance_outside_the_repository,
            SYNC_COALESCE_SECONDS="0.01",
            WORKER_POLL_SECONDS="0.1",
            RECONCILE_INTERVAL_SECONDS="0",
            PYTHONUNBUFFERED="1",
        )
        program_conf = tmp_path / "storefront.conf"
        program_conf.write_text(
            templated(
                SHIPPED.read_text(),
                {
                    "/etc/storefront/storefront.env": str(settings),
                    "/opt/storefront/.venv/bin/": f"{BIN}/",
                    "/opt/storefront": str(ROOT),
                    "/var/log/storefront": str(tmp_path),
                    "user=storefront": f"user={getpass.getuser()}",
                    "127.0.0.1:50%(process_num)02d": f"127.0.0.1:{port}",
                    "numprocs=2": "numprocs=1",
                },
            )
        )
        started.append(Supervisor(tmp_path, program_conf))
        started[-1].url = f"http://127.0.0.1:{port}"
        return started[-1]

    yield start
    for supervisor in started:  # before postgres_url drops the database (this fixture depends on it)
        supervisor.stop()


def answers(url):
    try:
        return requests.get(url + "/api/products", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def shopper():
    """A shopper whose connections are closed afterwards (gunicorn waits for open keep-alive ones to stop)."""
    made = LoopbackShopper()
    yield made
    made.http.close()


def test_supervisord_restarts_the_killed_worker_and_the_payment_intent_catches_up(
    supervise, shopper, postgres_url, sandbox
):
    supervisor = web = supervise(postgres_url)  # an empty database: storefront-migrate creates the schema
    try:
        wait_for(lambda: answers(supervisor.url), timeout=90, message="the web process")
    except AssertionError:
        raise AssertionError(supervisor.logs()) from None
    assert "storefront-migrate exited 0: starting" in supervisor.ctl("tail", "storefront-release", "stderr")
    worker = wait_for(lambda: supervisor.pid("storefront-worker"), timeout=30, message="the worker")
    shopper.change(web, 1, 1)
    status, started = shopper.call(web, "POST", "/api/checkout")
    assert status == 200, started
    intents = sandbox.state.payment_intents
    pi = started["payment_intent_id"]
    cart = shopper.change(web, 1, 2)
    # Synced and recorded: a worker killed between Stripe's answer and its record would hold the cart's
    # lease for SYNC_LEASE_SECONDS (30 s) more, and its successor would wait that long for this cart.
    wait_for(lambda: shopper.cart(web)["payment"]["amount"] == cart["total"], timeout=30, message="the first sync")
    assert intents[pi]["amount"] == cart["total"]

    os.kill(worker, signal.SIGKILL)
    cart = shopper.change(web, 1, 4)  # while no worker runs: the web process (WORKER=off) calls no Stripe
    assert intents[pi]["amount"] != cart["total"]

    wait_for(
        lambda: supervisor.pid("storefront-worker") not in (None, worker),
        timeout=30,
        message="supervisord to restart the worker",
    )
    wait_for(lambda: intents[pi]["amount"] == cart["total"], timeout=30, message="the PaymentIntent to catch up")
    wait_for(
        lambda: shopper.cart(web)["payment"]["amount"] == cart["total"],
        timeout=10,
        message="the store to record Stripe's answer: Pay enabled again",
    )
    assert "exited: storefront-worker (terminated by SIGKILL; not expected)" in supervisor.log_text()


def test_a_failed_migration_starts_neither_the_web_processes_nor_the_worker(supervise, postgres_url):
    supervisor = supervise(postgres_url.rsplit("/", 1)[0] + "/no_such_database")
    wait_for(lambda: "storefront-migrate failed" in supervisor.release_log(), timeout=60, message="the failure")
    assert "storefront-migrate failed" in supervisor.ctl("tail", "storefront-release", "stderr")
    status = supervisor.ctl("status")
    states = dict(line.split()[:2] for line in status.splitlines())
    assert states["storefront-migrate"] == "EXITED", status
    assert states["storefront-worker"] == "STOPPED", status
    assert states["storefront-web:storefront-web-1"] == "STOPPED", status


def test_the_demo_restarts_its_killed_worker_child(postgres_url, redis_url, sandbox, tmp_path, shopper):
    env = store_env(
        port=free_port(),
        database_url=postgres_url,
        sandbox_port=sandbox.port,
        webhook_secret="whsec_" + secrets.token_hex(16),
        secret_key="test-" + secrets.token_hex(16),
        queue=redis_url,  # with a queue the demo's default is a worker process beside it
        channel=f"storefront-test-{uuid.uuid4().hex}",
        SYNC_COALESCE_SECONDS="0.01",
        WORKER_POLL_SECONDS="0.1",
        RECONCILE_INTERVAL_SECONDS="0",
    )
    env.pop("WORKER", None)
    demo = ServerProcess.store("demo", env, tmp_path).wait_ready()
    try:
        first = wait_for(lambda: worker_children(demo.process.pid), timeout=30, message="the worker child")
        shopper.change(demo, 1, 1)
        status, started = shopper.call(demo, "POST", "/api/checkout")
        assert status == 200, started
        os.kill(first[0], signal.SIGKILL)
        cart = shopper.change(demo, 1, 3)
        restarted = wait_for(
            lambda: [pid for pid in worker_children(demo.process.pid) if pid not in first],
            timeout=30,
            message="the demo to restart its worker",
        )
        assert len(restarted) == 1
        intents = sandbox.state.payment_intents
        pi = started["payment_intent_id"]
        wait_for(lambda: intents[pi]["amount"] == cart["total"], timeout=30, message="the PaymentIntent to catch up")
        assert "worker exited with signal SIGKILL; restarting in 1s" in demo.log_tail(200)
    finally:
        demo.stop()
