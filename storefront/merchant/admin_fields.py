"""What the admin's pages share: money typed and shown in the store's currency, times on the merchant's clock."""

from flask import current_app
from wtforms import StringField
from wtforms.validators import StopValidation, ValidationError

from ..cart.domain import money
from ..errors import InvalidInput
from . import amounts, domain, words


def store_currency():
    """The store's currency (STORE_CURRENCY): what the admin's money fields are typed in."""
    return current_app.config["CURRENCY"]


def local_time(at):
    """A stored (UTC) time on the merchant's clock (STORE_TIMEZONE), to the second."""
    return words.local_time(at, current_app.config["TIMEZONE"])


def _money(_view, _context, model, name):
    return money(getattr(model, name), model.currency)


def _time(_view, _context, model, name):
    return local_time(getattr(model, name))


class MoneyField(StringField):
    """An amount typed in the store's currency ("119.00"); its data is minor units (None when empty)."""

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else amounts.as_typed(self.data, store_currency())

    def process_formdata(self, valuelist):
        text = valuelist[0] if valuelist else ""
        self.data = None
        if text.strip():
            try:
                self.data = amounts.parse_amount(text, store_currency())
            except InvalidInput as err:
                raise ValueError(err.message) from err


def price_in_range(_form, field):
    """A price from one minor unit to Stripe's largest charge, said in the currency."""
    if field.data is not None and not 1 <= field.data <= domain.MAX_UNIT_AMOUNT:
        currency = store_currency()
        low, high = money(1, currency), money(domain.MAX_UNIT_AMOUNT, currency)
        raise ValidationError(f"The price must be from {low} to {high}.")


class AmountRequired:
    """An empty (or blank) money field is refused with `message`; one already refused as not an amount
    keeps its own reason."""

    def __init__(self, message):
        self.message = message
        self.field_flags = {"required": True}

    def __call__(self, _form, field):
        if field.data is None and not field.errors:
            raise StopValidation(self.message)
