"""The merchant's pages at /admin (Flask-Admin), saving through the merchant service so carts follow.

Forms are Flask-WTF forms: each carries a CSRF token bound to the session, checked on submit. Money is
typed and shown in the store's currency ("119.00"); the minor units are computed here (merchant.amounts).
"""

from flask import flash, g, redirect, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import FilterEqual, FilterNotEqual
from flask_admin.theme import Bootstrap4Theme
from markupsafe import Markup
from sqlalchemy import func, select

from ..cart.domain import money
from ..errors import ShopError
from ..extensions import db
from ..models import Order, Product, WebhookEvent
from ..webhooks import inbox
from ..wiring import current_shop
from . import amounts, history, review, service, words
from .admin_fields import _money, _time, local_time
from .admin_orders import (
    AcceptForm,
    RefundForm,
    form_errors,
    refund_question,
    refund_refused,
    status_column,
)
from .admin_products import ProductAdmin


def _integer(text):
    """A hidden field's integer, or -1 (never an amount refunded) when it was tampered with or left out."""
    return int(text) if (text or "").isdigit() and len(text) < 16 else -1


class OrderAdmin(ModelView):
    """Orders, the review queue first; an order's page shows its status in words, its history and actions."""

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
        "created_at",
    )
    column_details_list = column_list + ("cart_id", "items", "payment_intent_id")
    column_labels = {
        "id": "Order",
        "status": "Status",
        "attention": "Attention",
        "amount": "Total",
        "amount_received": "Received",
        "amount_refunded": "Refunded",
        "refund_due": "Overpayment returned",
        "created_at": "Placed",
        "cart_id": "Cart",
        "items": "Items",
        "payment_intent_id": "Stripe payment reference",
    }
    column_formatters = {
        **{name: _money for name in ("amount", "amount_received", "amount_refunded", "refund_due")},
        "status": status_column,
        "created_at": _time,
        "items": lambda _v, _c, m, _n: "; ".join(
            f"{i['quantity']} × {i['name']} at {money(i['unit_amount'], m.currency)}" for i in m.items
        ),
    }
    # The Status filter offers the statuses in words; the URL keeps the code (?flt0_0=needs_review).
    column_filters = (
        FilterEqual(Order.status, "Status", options=tuple(words.STATUS_WORDS.items())),
        FilterNotEqual(Order.status, "Status", options=tuple(words.STATUS_WORDS.items())),
    )
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

    def get_list(self, *args, **kwargs):
        count, found = super().get_list(*args, **kwargs)
        g.reasons = review.reasons(db.session.connection(), found)  # one statement for the page's rows
        return count, found

    def get_one(self, id):
        order = super().get_one(id)
        g.reasons = review.reasons(db.session.connection(), [order]) if order is not None else {}
        return order

    def render(self, template, **kwargs):
        model = kwargs.get("model")
        if template == self.details_template and model is not None:
            # Read on Flask-Admin's session, in the transaction that loaded the order for this page.
            reason = g.reasons.get(model.id)
            kwargs["history"] = [
                (local_time(line.at), *words.history_line(line.kind, line.message))
                for line in history.of_order(db.session.connection(), model.id)
            ]
            kwargs.update(
                refund_form=RefundForm(),
                accept_form=AcceptForm(),
                money=money,
                status_words=words.status_words(model, reason),
                reason=reason,
                can_accept=review.can_accept(model, reason),
            )
        if template == self.list_template:
            kwargs["status_counts"] = [
                (status, words.status_name(status), count)
                for status, count in service.status_counts(db.session.connection())
            ]
        return super().render(template, **kwargs)

    @expose("/refund/<int:order_id>", methods=("POST",))
    def refund(self, order_id):
        """A refund typed in the store's currency: the first post asks for confirmation, the second refunds.
        Flask-WTF checks the CSRF token before anything moves."""
        back = redirect(url_for(".details_view", id=order_id))
        form = RefundForm()
        if not form.validate_on_submit():
            flash(form_errors(form), "error")
            return back
        try:
            order = service.order_history(current_shop(), order_id)
            amount, currency = form.amount.data, order["currency"]
            refundable = order["amount_received"] - order["amount_refunded"]
            if not 0 < amount <= refundable:
                flash(refund_refused(amount, refundable, currency), "error")
                return back
            if form.confirm.data != "yes":
                return self.render(
                    "admin/refund_confirm.html",
                    order=order,
                    form=form,
                    typed=amounts.as_typed(amount, currency),
                    money_text=money(amount, currency),
                    question=refund_question(amount, order),
                )
            before = _integer(form.refunded_before.data)
            service.refund_order(current_shop(), order_id, amount, refunded_before=before)
        except ShopError as err:
            flash(err.message, "error")
            return back
        flash(f"Refunded {money(amount, currency)} to the shopper's card (order {order_id}).", "success")
        return back

    @expose("/accept/<int:order_id>", methods=("POST",))
    def accept(self, order_id):
        """Accept and fulfil a needs_review order whose stock was gone, now that stock allows."""
        if not AcceptForm().validate_on_submit():
            flash("This form is out of date; open the order again.", "error")
        else:
            try:
                review.accept_order(current_shop(), order_id)
            except ShopError as err:
                flash(err.message, "error")
            else:
                flash(f"Order {order_id} accepted: its units are taken from stock and it is paid. Ship it.", "success")
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
        "received_at": "Received",
        "id": "Event",
        "type": "Event type",
        "object_id": "Stripe payment (or charge)",
        "orders": "Orders",
        "attempts": "Tries",
        "last_error": "Last error",
        "due_at": "Next try",
    }
    column_formatters = {"orders": _orders_of_event, "received_at": _time, "due_at": _time}
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
        counts = [(status, words.status_name(status), count) for status, count in service.status_counts(conn)]
        return self.render(
            "admin/store_index.html",
            status_counts=counts,
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
