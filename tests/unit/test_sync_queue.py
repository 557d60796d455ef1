"""The worker's sync queue as rules: each cart queued once, FIFO, again after a sync it outran, at rest after
a failure, never more tasks than the pool's size; and the poll that stops looking while the queue is full.

Stripe and the database are stood in for by a scripted `sync_cart` (the syncs themselves are tested against
the sandbox in tests/integration/test_worker.py); tasks are started by a fake start_task that the test runs.
"""

import contextlib
import threading
import time
from types import SimpleNamespace

import pytest

from storefront import worker as worker_module
from storefront.config import Config
from storefront.payments.sync import DONE, FAILED
from storefront.worker import POLL_BATCH, Worker, syncs

pytestmark = pytest.mark.timeout(30)


class FakeApp:
    def __init__(self, **overrides):
        self.config = {**vars(Config({})), "SYNC_COALESCE_SECONDS": 0, "STRIPE_UPDATES_PER_SECOND": 0, **overrides}

    def app_context(self):
        return contextlib.nullcontext()


def fake_shop():
    return SimpleNamespace(session=SimpleNamespace(remove=lambda: None))


class Tasks:
    """A start_task that keeps the tasks for the test to run, one after another."""

    def __init__(self):
        self.started = []

    def __call__(self, target, *args):
        self.started.append((target, args))

    def run_all(self):
        while self.started:
            target, args = self.started.pop(0)
            target(*args)


@pytest.fixture
def synced(monkeypatch):
    """The carts synced, in order; `outcomes[cart_id]` scripts a result, `during[cart_id]` runs inside its sync."""
    record = SimpleNamespace(carts=[], outcomes={}, during={})

    def sync_cart(shop, cart_id, owner, lease_seconds, budget=None):
        record.carts.append(cart_id)
        record.during.pop(cart_id, lambda: None)()
        return record.outcomes.get(cart_id, DONE)

    monkeypatch.setattr(syncs, "sync_cart", sync_cart)
    return record


def cart_syncs(tasks, **config):
    return syncs.CartSyncs(FakeApp(**config), tasks, fake_shop, sleep=lambda _: None)


def test_a_cart_changed_while_queued_is_queued_once_and_carts_go_first_in_first_out(synced):
    tasks = Tasks()
    pool = cart_syncs(tasks)
    for cart_id in (3, 1, 3, 2, 1):
        pool.schedule(cart_id)
    assert pool.found(2) is False  # already queued: the poll adds nothing
    assert pool.waiting() == 3 and pool.busy() == 3
    tasks.run_all()
    assert synced.carts == [3, 1, 2]
    assert pool.busy() == 0 and pool.tasks() == 0


def test_a_storm_is_worked_through_by_at_most_the_pools_tasks(synced):
    tasks = Tasks()
    pool = cart_syncs(tasks, SYNC_CONCURRENCY=3)
    for cart_id in range(1, 1501):
        pool.schedule(cart_id)
    assert len(tasks.started) == 3 and pool.tasks() == 3
    assert pool.waiting() == 1500
    tasks.run_all()
    assert synced.carts == list(range(1, 1501))
    assert pool.tasks() == 0 and pool.busy() == 0


def test_a_cart_changed_while_it_is_being_synced_is_synced_once_more_after(synced):
    tasks = Tasks()
    pool = cart_syncs(tasks)
    synced.during[7] = lambda: (pool.schedule(7), pool.schedule(7), pool.schedule(8))
    pool.schedule(7)
    tasks.run_all()
    # Queued again behind the cart that was waiting, once however many changes came.
    assert synced.carts == [7, 8, 7]
    assert pool.busy() == 0


def test_a_failed_cart_rests_from_the_poll_but_a_new_change_tries_again(synced, monkeypatch):
    tasks = Tasks()
    pool = cart_syncs(tasks)
    synced.outcomes[5] = FAILED
    pool.schedule(5)
    tasks.run_all()
    assert synced.carts == [5] * 4  # the sync's own retries, with backoff
    assert pool.found(5) is False  # resting: the poll leaves it for FAILED_REST_SECONDS
    assert not tasks.started
    pool.schedule(5)  # a shopper's change is worth a new try
    tasks.run_all()
    assert synced.carts == [5] * 8
    monkeypatch.setattr(syncs, "FAILED_REST_SECONDS", 0.0)
    pool.schedule(5)
    tasks.run_all()
    assert pool.found(5) is True  # its rest is over: the poll queues it
    synced.outcomes[5] = DONE
    tasks.run_all()
    assert synced.carts == [5] * 13 and pool.busy() == 0


def test_a_change_during_a_sync_that_fails_waits_for_the_rest(synced):
    tasks = Tasks()
    pool = cart_syncs(tasks)
    synced.outcomes[4] = FAILED
    synced.during[4] = lambda: pool.schedule(4)
    pool.schedule(4)
    tasks.run_all()
    assert synced.carts == [4] * 4 and pool.busy() == 0 and pool.found(4) is False


def test_shutdown_lets_go_of_queued_carts_and_waits_only_for_the_sync_under_way(synced):
    tasks = Tasks()
    pool = cart_syncs(tasks, SYNC_CONCURRENCY=1)
    synced.during[1] = lambda: pool.busy() == 3 and pool.let_go()
    for cart_id in (1, 2, 3):
        pool.schedule(cart_id)
    tasks.run_all()
    assert synced.carts == [1] and pool.busy() == 0


def test_tasks_on_real_threads_never_outnumber_the_pool(monkeypatch):
    lock, active, peak, done = threading.Lock(), [0], [0], []

    def sync_cart(shop, cart_id, owner, lease_seconds, budget=None):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.002)
        with lock:
            active[0] -= 1
            done.append(cart_id)
        return DONE

    def start_thread(target, *args):
        threading.Thread(target=target, args=args, daemon=True).start()

    monkeypatch.setattr(syncs, "sync_cart", sync_cart)
    pool = syncs.CartSyncs(FakeApp(SYNC_CONCURRENCY=4), start_thread, fake_shop, sleep=time.sleep)
    threads = threading.active_count()
    for cart_id in range(300):
        pool.schedule(cart_id)
        pool.schedule(cart_id % 50)
        assert pool.tasks() <= 4 and threading.active_count() <= threads + 4
    deadline = time.monotonic() + 20
    while pool.busy() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.busy() == 0 and pool.tasks() == 0
    assert peak[0] <= 4
    assert set(done) == set(range(300))


@pytest.mark.parametrize(
    ("per_second", "setting", "size"),
    [(20, 0, 10), (25, 0, 13), (2, 0, 4), (100, 0, 16), (0, 0, 16), (20, 3, 3)],
)
def test_the_pool_is_sized_to_the_update_budget(per_second, setting, size):
    config = {"STRIPE_UPDATES_PER_SECOND": per_second, "SYNC_CONCURRENCY": setting}
    assert syncs.pool_size(config) == size


def test_the_setting_is_read_from_the_environment():
    assert Config({"SYNC_CONCURRENCY": "6"}).SYNC_CONCURRENCY == 6
    assert Config({}).SYNC_CONCURRENCY == 0  # from the budget


def test_the_poll_does_not_look_while_the_queue_holds_a_polls_worth(synced, monkeypatch):
    polls = []

    def unclaimed_lagging(shop, limit):
        polls.append(limit)
        return list(range(1000, 1000 + limit))

    monkeypatch.setattr(worker_module, "unclaimed_lagging", unclaimed_lagging)
    monkeypatch.setattr(worker_module, "_process_events", lambda shop: None)
    tasks = Tasks()
    worker = Worker(FakeApp(), start_task=tasks, sleep=lambda _: None, shop_factory=fake_shop)
    worker.turn(fake_shop())
    assert polls == [POLL_BATCH] and worker.syncs.waiting() == POLL_BATCH
    worker.turn(fake_shop())
    assert polls == [POLL_BATCH] and worker.syncs.waiting() == POLL_BATCH  # full: no look, nothing added
    assert worker.syncs.tasks() == worker.syncs.size


@pytest.mark.parametrize(("pool", "overflow", "size"), [(20, 0, 10), (8, 0, 4), (8, 4, 6), (2, 0, 1), (40, 0, 10)])
def test_unset_the_pool_of_syncs_takes_at_most_half_the_database_connections(pool, overflow, size):
    config = {"STRIPE_UPDATES_PER_SECOND": 20, "DATABASE_POOL_SIZE": pool, "DATABASE_MAX_OVERFLOW": overflow}
    assert syncs.pool_size(config) == size
    assert syncs.pool_size({**config, "SYNC_CONCURRENCY": 12}) == 12  # an explicit setting is the operator's


def test_a_concurrency_beyond_the_database_connections_is_logged(caplog):
    config = {"SYNC_CONCURRENCY": 30, "DATABASE_POOL_SIZE": 20, "DATABASE_MAX_OVERFLOW": 5}
    syncs._check_fits(config, syncs.pool_size(config))
    assert "SYNC_CONCURRENCY=30 is more than this process's 25 database connections" in caplog.text
    caplog.clear()
    syncs._check_fits({**config, "SYNC_CONCURRENCY": 25}, 25)
    assert caplog.text == ""
