"""The merchant's products at /admin/products: prices typed in the store's currency, a price that reaches
open carts confirmed first, and saves through the merchant service so carts follow."""

import json

from flask import flash, g, request
from flask_admin.contrib.sqla import ModelView
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from ..cart.domain import money
from ..errors import ShopError
from ..extensions import db
from ..models import Product
from ..wiring import current_shop
from . import domain, pricing, service
from .admin_fields import AmountRequired, MoneyField, _money, price_in_range, store_currency


def _no_control_characters(_form, field):
    if field.data and domain.has_control_characters(field.data):
        raise ValidationError("The name may not hold control characters.")


class ProductForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=domain.MAX_NAME), _no_control_characters])
    unit_amount = MoneyField("Price", validators=[AmountRequired("Type a price, such as 119.00."), price_in_range])
    stock = IntegerField(
        "Stock on hand (empty: not tracked)", validators=[Optional(), NumberRange(0, domain.MAX_STOCK)]
    )
    active = BooleanField("For sale", default=True)
    # What the edit page showed when it was opened (JSON of SHOWN_FIELDS): a save sends only what the
    # merchant changed, and is refused if the store changed it meanwhile (units sold are not sold again).
    shown = HiddenField()
    # The new price (minor units) the merchant confirmed after being told which open carts it reaches.
    confirm_price = HiddenField()


SHOWN_FIELDS = ("unit_amount", "stock", "active")


def _priced_in_store_currency(form):
    """The price field says its currency ("Price in USD, such as 119.00"): amounts are typed, not cents."""
    form.unit_amount.label.text = f"Price in {store_currency().upper()}"
    form.unit_amount.description = "Such as 119.00 (a point for decimals)"
    return form


class ProductAdmin(ModelView):
    """Products: create, and edit name, price, stock and whether they are for sale (never deleted)."""

    form = ProductForm
    can_delete = False
    column_list = ("id", "name", "unit_amount", "stock", "reserved", "available", "active")
    column_labels = {
        "id": "No.",
        "unit_amount": "Price",
        "stock": "Stock on hand",
        "reserved": "Reserved by checkouts being paid",
        "available": "Available to shoppers",
        "active": "For sale",
    }
    column_formatters = {
        "unit_amount": _money,
        "reserved": lambda _v, _c, m, _n: g.reserved.get(m.id, 0) if m.stock is not None else "",
        "available": lambda _v, _c, m, _n: "" if g.available.get(m.id) is None else g.available[m.id],
    }

    def create_form(self, obj=None):
        return _priced_in_store_currency(super().create_form(obj))

    def edit_form(self, obj=None):
        return _priced_in_store_currency(super().edit_form(obj))

    def get_list(self, *args, **kwargs):
        # The catalog's own counts, for every product in one statement (not a query per row), read in the
        # merchant's use case before Flask-Admin opens its own transaction for the page's rows.
        listed = service.list_products(current_shop())
        g.available = {product["id"]: product["available"] for product in listed}
        g.reserved = {product["id"]: product["reserved"] for product in listed}
        return super().get_list(*args, **kwargs)

    def _body(self, form):
        return {
            "name": form.name.data,
            "unit_amount": form.unit_amount.data,
            "stock": form.stock.data,
            "active": bool(form.active.data),
        }

    def on_form_prefill(self, form, id):
        if request.method == "GET":  # a form sent back with errors keeps what it showed first
            form.shown.data = json.dumps({name: getattr(form, name).data for name in SHOWN_FIELDS})

    def _shown(self, form):
        try:
            shown = json.loads(form.shown.data or "")
        except ValueError:
            shown = None
        if not isinstance(shown, dict) or set(shown) != set(SHOWN_FIELDS):
            raise ShopError("This form is out of date; open the product again.")
        return shown

    def create_model(self, form):
        try:
            created = service.create_product(
                current_shop(), {k: v for k, v in self._body(form).items() if k != "stock" or v is not None}
            )
        except ShopError as err:
            flash(err.message, "error")
            return False
        return db.session.get(Product, created["id"])

    def update_model(self, form, model):
        product_id, body = model.id, self._body(form)
        # Flask-Admin's read of the model ends here: the service locks and writes the product in its own
        # unit of work, which cannot open beside that transaction.
        db.session.rollback()
        try:
            shown = self._shown(form)
            for name in SHOWN_FIELDS:
                if body[name] == shown[name]:
                    del body[name]  # not changed here: whatever the store holds now stays
            if self._price_reaches_carts(form, product_id, body):
                return False  # the form again, with what the price would do and the price confirmed
            service.update_product(current_shop(), product_id, body, shown=shown)
        except ShopError as err:
            flash(err.message, "error")
            return False
        return True

    def _price_reaches_carts(self, form, product_id, body):
        """True, with a warning on the page, when a new price would change open carts and the merchant has
        not yet confirmed that price: the form comes back carrying the confirmation, to save again."""
        new = body.get("unit_amount")
        if new is None or form.confirm_price.data == str(new):
            return False
        preview = pricing.price_preview(current_shop(), product_id, new)
        if not preview:
            return False
        form.confirm_price.data = str(new)
        flash(price_warning(preview, money(new, store_currency()), store_currency()), "warning")
        return True


def price_warning(preview, price, currency):
    """ "This price reaches 2 open carts; their totals will change: $129.00 → $119.00, …"."""
    carts = "1 open cart" if len(preview) == 1 else f"{len(preview)} open carts"
    shown = [f"{money(old, currency)} → {money(new, currency)}" for old, new in preview[:5]]
    more = f" and {len(preview) - 5} more" if len(preview) > 5 else ""
    return (
        f"The new price, {price}, reaches {carts} (shoppers see the change at once, checkouts too); "
        f"{'its total' if len(preview) == 1 else 'their totals'} will change: {', '.join(shown)}{more}. "
        "Save again to confirm, or change the price."
    )
