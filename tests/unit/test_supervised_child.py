"""The demo's worker supervision (worker_process.SupervisedChild): a child that dies is restarted and the
death logged; one that keeps dying is restarted with a doubling backoff, never in a tight loop."""

import itertools
import logging
import subprocess
import sys
import time

from tests.conftest import wait_for
from worker_process import SupervisedChild, describe_exit

CRASHES = [sys.executable, "-c", "raise SystemExit(3)"]


def test_a_crash_looping_child_is_restarted_with_a_doubling_backoff(caplog):
    spawned = []

    def spawn(command):
        spawned.append(time.monotonic())
        return subprocess.Popen(command)

    child = SupervisedChild("worker", CRASHES, spawn=spawn, first_backoff=0.2, max_backoff=0.8)
    with caplog.at_level(logging.WARNING, logger="storefront.worker_process"):
        child.start()
        try:
            wait_for(lambda: len(spawned) >= 5, timeout=20, message="four restarts")
        finally:
            child.stop()
    gaps = [later - earlier for earlier, later in itertools.pairwise(spawned)]
    # Each gap is the child's life (an interpreter start) plus the backoff: 0.2, 0.4, 0.8, then capped at 0.8 s.
    for gap, backoff in zip(gaps[:4], (0.2, 0.4, 0.8, 0.8), strict=True):
        assert gap >= backoff
    assert "worker exited with code 3; restarting in 0.2s" in caplog.text
    assert child.restarts == len(spawned) - 1


def test_a_stopped_child_is_not_restarted():
    child = SupervisedChild("worker", [sys.executable, "-c", "import time; time.sleep(60)"]).start()
    first = child.process
    child.stop(timeout=10)
    assert first.returncode is not None
    time.sleep(1.5)  # longer than a restart's backoff and the watcher's poll
    assert child.process is first and child.restarts == 0


def test_exits_are_described_by_code_or_signal():
    assert describe_exit(1) == "code 1"
    assert describe_exit(-9) == "signal SIGKILL"
