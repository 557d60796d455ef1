"""The merchant's pages at /admin (Flask-Admin), saving through the merchant service so carts follow.

Forms are Flask-WTF forms: each carries a CSRF token bound to the session, checked on submit.
"""

import json

from flask import flash, g, redirect, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.theme import Bootstrap4Theme
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import func, select
from wtforms import BooleanField, HiddenField, IntegerField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from ..cart.domain import money
from ..errors import ShopError
from ..extensions import db
from ..models import Order, Product, WebhookEvent
from ..webhooks import inbox
from ..wiring import current_shop
from . import domain, history, service


def _money(_view, _context, model, name):
    return money(getattr(model, name), model.currency)


def _no_control_characters(_form, field):
    if field.data and domain.has_control_characters(field.data):
        raise ValidationError("The name may not hold control characters.")


class ProductForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=domain.MAX_NAME), _no_control_characters])
    unit_amount = IntegerField("Price (cents)", validators=[InputRequired(), NumberRange(1, domain.MAX_UNIT_AMOUNT)])
    stock = IntegerField(
        "Stock on hand (empty: not tracked)", validators=[Optional(), NumberRange(0, domain.MAX_STOCK)]
    )
    active = BooleanField("For sale", default=True)
    # What the edit page showed when it was opened (JSON of SHOWN_FIELDS): a save sends only what the
    # merchant changed, and is refused if the store changed it meanwhile (units sold are not sold again).
    shown = HiddenField()


SHOWN_FIELDS = ("unit_amount", "stock", "active")


class RefundForm(FlaskForm):
    amount = IntegerField("Amount (cents; empty: all not yet refunded)", validators=[Optional(), NumberRange(1)])


class ProductAdmin(ModelView):
    """Products: create, and edit name, price, stock and whether they are for sale (never deleted)."""

    form = ProductForm
    can_delete = False
    column_list = ("id", "name", "unit_amount", "stock", "reserved", "available", "active")
    column_labels = {"unit_amount": "Price", "reserved": "Reserved", "available": "Available"}
    column_descriptions = {"reserved": "Units held by carts being paid for (frozen by the handshake)"}
    column_formatters = {
        "unit_amount": _money,
        "reserved": lambda _v, _c, m, _n: g.reserved.get(m.id, 0) if m.stock is not None else "",
        "available": lambda _v, _c, m, _n: "" if g.available.get(m.id) is None else g.available[m.id],
    }

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
            service.update_product(current_shop(), product_id, body, shown=shown)
        except ShopError as err:
            flash(err.message, "error")
            return False
        return True


class OrderAdmin(ModelView):
    """Orders, the `needs_review` queue first; an order's page shows its history and a refund form."""

    can_create = can_edit = can_delete = False
    can_view_details = True
    details_template = "admin/order_details.html"
    list_template = "admin/order_list.html"
    column_list = (
        "id",
        "status",
        "attention",
        "amount",
        "amount_received",
        "amount_refunded",
        "refund_due",
        "cart_id",
        "created_at",
    )
    column_details_list = column_list + ("payment_intent_id", "cart_version", "items")
    column_formatters = {
        **{name: _money for name in ("amount", "amount_received", "amount_refunded", "refund_due")},
        "items": lambda _v, _c, m, _n: "; ".join(
            f"{i['quantity']} × {i['name']} at {money(i['unit_amount'], m.currency)}" for i in m.items
        ),
    }
    column_filters = ("status",)
    column_sortable_list = ("id", "status", "created_at")

    def get_query(self):
        query = super().get_query()
        status = request.args.get("status")
        if status:
            query = query.filter(Order.status == status)
        if not request.args.get("sort"):
            query = query.order_by(service.REVIEW_FIRST, Order.created_at.desc(), Order.id.desc())
        return query

    def get_count_query(self):
        query = super().get_count_query()
        status = request.args.get("status")
        return query.filter(Order.status == status) if status else query

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            # Read on Flask-Admin's session, in the transaction that loaded the order for this page.
            kwargs["history"] = history.of_order(db.session.connection(), kwargs["model"].id)
            kwargs["refund_form"] = RefundForm()
            kwargs["money"] = money
        if template == self.list_template:
            kwargs["status_counts"] = service.status_counts(db.session.connection())
        return super().render(template, **kwargs)

    @expose("/refund/<int:order_id>", methods=("POST",))
    def refund(self, order_id):
        """Refund from the order's page: Flask-WTF checks the CSRF token before anything moves."""
        form = RefundForm()
        if not form.validate_on_submit():
            flash("; ".join(e for errors in form.errors.values() for e in errors) or "Invalid form.", "error")
        else:
            try:
                order = service.refund_order(current_shop(), order_id, form.amount.data)
            except ShopError as err:
                flash(err.message, "error")
            else:
                flash(
                    Markup.escape(
                        f"Refunded: order {order_id} now has {money(order['amount_refunded'], order['currency'])}"
                        f" refunded ({order['status']})."
                    ),
                    "success",
                )
        return redirect(url_for(".details_view", id=order_id))


NEEDS_ATTENTION = (WebhookEvent.processed_at.is_(None), WebhookEvent.attempts >= inbox.ATTENTION_ATTEMPTS)


def _orders_of_event(_view, _context, model, _name):
    links = (
        f'<a href="{url_for("admin_orders.details_view", id=order_id)}">{order_id}</a>'
        for order_id in g.attention_orders.get(model.object_id, [])
    )
    return Markup(", ".join(links) or "none yet")


class AttentionAdmin(ModelView):
    """Payments whose webhook event keeps failing (ATTENTION_ATTEMPTS tries or more): the error a person
    must look at. Read-only: the store keeps retrying each until it is processed, then it leaves the list."""

    can_create = can_edit = can_delete = False
    column_list = ("received_at", "id", "type", "object_id", "orders", "attempts", "last_error", "due_at")
    column_labels = {
        "id": "Event",
        "object_id": "PaymentIntent (or charge)",
        "last_error": "Last error",
        "due_at": "Next try",
    }
    column_formatters = {"orders": _orders_of_event}
    column_default_sort = "received_at"

    def get_query(self):
        return super().get_query().filter(*NEEDS_ATTENTION)

    def get_count_query(self):
        return super().get_count_query().filter(*NEEDS_ATTENTION)

    def get_list(self, *args, **kwargs):
        count, events = super().get_list(*args, **kwargs)
        pi_ids = sorted({event.object_id for event in events if event.object_id})
        g.attention_orders = service.orders_of_payments(db.session.connection(), pi_ids)
        return count, events


def _attention_count(conn):
    return conn.execute(select(func.count()).select_from(WebhookEvent).where(*NEEDS_ATTENTION)).scalar_one()


class StoreIndex(AdminIndexView):
    @expose("/")
    def index(self):
        conn = db.session.connection()
        return self.render(
            "admin/store_index.html",
            status_counts=service.status_counts(conn),
            attention=_attention_count(conn),
            flagged=service.flagged_count(conn),
        )


def register_admin(app):
    """Mount the HTML admin at /admin (the admin gate in front of it answers 404 without a password)."""
    admin = Admin(
        app,
        name="Harbour Coffee Co. · Admin",
        url="/admin",
        index_view=StoreIndex(url="/admin", name="Overview"),
        theme=Bootstrap4Theme(base_template="admin/store_master.html"),
    )
    admin.add_view(ProductAdmin(Product, db, name="Products", endpoint="admin_products", url="/admin/products"))
    admin.add_view(OrderAdmin(Order, db, name="Orders", endpoint="admin_orders", url="/admin/orders"))
    admin.add_view(
        AttentionAdmin(WebhookEvent, db, name="Needs attention", endpoint="admin_attention", url="/admin/attention")
    )
    return admin
