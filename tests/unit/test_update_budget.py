"""The store-wide pace of PaymentIntent updates (payments.domain + payments.budget), without Redis."""

from storefront.payments.budget import LocalBudget, update_budget
from storefront.payments.domain import next_update_slot


def test_an_idle_store_updates_at_once():
    assert next_update_slot(now=100.0, free_at=90.0, interval=0.05) == (100.0, 100.05)


def test_a_busy_store_queues_updates_one_interval_apart():
    slot, free_at = next_update_slot(now=100.0, free_at=100.2, interval=0.05)
    assert (slot, free_at) == (100.2, 100.25)


def test_reservations_are_spaced_and_sleeps_only_when_the_store_is_busy():
    now, slept = [50.0], []
    budget = LocalBudget(per_second=10, sleep=slept.append, clock=lambda: now[0])
    waits = [budget.wait() for _ in range(3)]
    assert [round(w, 6) for w in waits] == [0.0, 0.1, 0.2]
    assert [round(s, 6) for s in slept] == [0.1, 0.2]
    now[0] = 60.0
    assert budget.wait() == 0.0


def test_no_budget_when_updates_are_not_paced():
    assert update_budget({"STRIPE_UPDATES_PER_SECOND": 0}, sleep=None) is None
    assert isinstance(update_budget({"STRIPE_UPDATES_PER_SECOND": 20}, sleep=None), LocalBudget)


def test_an_update_woken_too_late_takes_a_fresh_slot_so_late_updates_do_not_burst():
    now = [0.0]

    def oversleep(seconds):
        now[0] += seconds + 1.0  # a busy process wakes a second late

    budget = LocalBudget(per_second=10, sleep=oversleep, clock=lambda: now[0])
    assert budget.wait() == 0.0  # an idle store: at once
    budget.wait()  # its slot was 0.1; woken at 1.1, it takes the slot at 1.1 instead
    assert round(now[0], 6) == 1.1
    assert round(budget.reserve(), 6) == 0.1  # so the next update still waits one interval
