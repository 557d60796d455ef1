"""The forms and sentences of the merchant's order pages: a refund typed in the store's currency and confirmed
on a second page, accepting a reviewed order, and what the pages say about an order."""

from flask import g
from flask_wtf import FlaskForm
from wtforms import HiddenField

from ..cart.domain import money
from . import words
from .admin_fields import AmountRequired, MoneyField


class RefundForm(FlaskForm):
    amount = MoneyField("Amount to refund", validators=[AmountRequired("Type the amount to refund, such as 5.00.")])
    # "yes" once the merchant has read what the refund will do (the second page); without it nothing moves.
    confirm = HiddenField()
    # What was refunded when the confirmation page was shown: a second click on Yes refunds nothing more.
    refunded_before = HiddenField()


class AcceptForm(FlaskForm):
    """Only the CSRF token: the order is in the URL."""


def status_column(_view, _context, model, _name):
    """The list's status column in words, with why a needs_review order is there."""
    return words.status_words(model, g.reasons.get(model.id))


def form_errors(form):
    """A form's errors in one line."""
    return "; ".join(e for errors in form.errors.values() for e in errors) or "Invalid form."


def refund_question(amount, order):
    """ "Refund $5.00 of $153.00 to the shopper's card?" (and what was refunded before, if anything)."""
    currency = order["currency"]
    paid, before = money(order["amount_received"], currency), order["amount_refunded"]
    earlier = f" ({money(before, currency)} was refunded before)" if before else ""
    return f"Refund {money(amount, currency)} of {paid} to the shopper's card{earlier}?"


def refund_refused(amount, refundable, currency):
    """Why an amount can't be refunded, in words."""
    if amount <= 0:
        return "Type an amount above zero to refund."
    if refundable <= 0:
        return "Nothing is left to refund on this order."
    return f"You can refund at most {money(refundable, currency)}: the rest is already refunded or was never paid."
