"""Checkout and payment rules without Flask, a database or Stripe."""

from datetime import datetime, timedelta

import pytest

from storefront.checkout import domain
from storefront.errors import CartChanged, CheckoutInProgress, InvalidInput

OK = {"shown_version": 3, "version": 3, "status": "open", "total": 1000, "has_payment_intent": True}


def test_handshake_accepts_the_latest_version_of_an_open_cart():
    domain.check_handshake(**OK)


def test_handshake_with_a_stale_version_is_cart_changed():
    with pytest.raises(CartChanged):
        domain.check_handshake(**{**OK, "shown_version": 2})


def test_handshake_on_a_frozen_cart_is_checkout_in_progress():
    with pytest.raises(CheckoutInProgress):
        domain.check_handshake(**{**OK, "status": "frozen"})


@pytest.mark.parametrize(
    "change,code", [({"total": 0}, "cart_empty"), ({"has_payment_intent": False}, "checkout_not_started")]
)
def test_handshake_needs_items_and_a_payment_intent(change, code):
    with pytest.raises(InvalidInput) as err:
        domain.check_handshake(**{**OK, **change})
    assert err.value.code == code


@pytest.mark.parametrize("body", [{}, {"cart_version": "3"}, {"cart_version": 0}, {"cart_version": True}, [], None])
def test_cart_version_must_be_a_positive_integer(body):
    with pytest.raises(InvalidInput):
        domain.parse_cart_version(body)


@pytest.mark.parametrize(
    "status,error,outcome",
    [
        ("succeeded", False, "succeeded"),
        ("canceled", False, "canceled"),
        ("requires_payment_method", True, "failed"),
        ("requires_payment_method", False, "pending"),
        ("requires_action", False, "pending"),
        ("processing", False, "processing"),
        ("requires_capture", False, "processing"),
    ],
)
def test_payment_outcome(status, error, outcome):
    assert domain.payment_outcome(status, error) == outcome


def test_settlement_pays_only_the_exact_total():
    assert domain.settlement(1000, 1000) == ("paid", 0)
    assert domain.settlement(1000, 1500) == ("needs_review", 500)
    assert domain.settlement(1000, 400) == ("needs_review", 0)


def test_a_payment_our_records_do_not_match_is_for_review_even_at_the_exact_total():
    assert domain.settlement(1000, 1000, matched=False) == ("needs_review", 0)
    assert domain.settlement(1000, 1500, matched=False) == ("needs_review", 500)


def test_freeze_expires_after_its_time_limit():
    frozen = datetime(2026, 1, 1, 12, 0, 0)
    assert not domain.freeze_expired(frozen, frozen + timedelta(seconds=899), 900)
    assert domain.freeze_expired(frozen, frozen + timedelta(seconds=901), 900)
    assert not domain.freeze_expired(None, frozen, 900)


@pytest.mark.parametrize("status", ["processing", "requires_capture", "succeeded"])
def test_a_freeze_holds_while_money_can_still_move(status):
    assert not domain.may_release_freeze(status)


@pytest.mark.parametrize("status", ["requires_payment_method", "requires_action", "canceled"])
def test_a_freeze_may_be_released_otherwise(status):
    assert domain.may_release_freeze(status)


def test_a_failure_older_than_the_freeze_belongs_to_an_earlier_attempt():
    frozen = datetime(2026, 1, 1, 12, 0, 5, 400000)
    assert not domain.failure_is_current(datetime(2026, 1, 1, 12, 0, 4), frozen)
    assert domain.failure_is_current(datetime(2026, 1, 1, 12, 0, 5), frozen)
    assert domain.failure_is_current(None, frozen)


def test_an_order_is_refunded_when_refunds_go_beyond_its_excess():
    assert domain.refund_outcome("paid", 1000, 1000, 0) == "refunded"
    assert domain.refund_outcome("paid", 1000, 300, 0) == "paid"
    assert domain.refund_outcome("needs_review", 1500, 500, 500) == "needs_review"
