"""Database models (SQLAlchemy 2.0 typed mappings)."""

from datetime import UTC, datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow():
    return datetime.now(UTC).replace(tzinfo=None)


class Product(db.Model):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    unit_amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    # None: stock is not tracked. Units held by frozen carts are StockReservation rows, not subtracted here.
    stock: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True, server_default=true())


LAGGING = (
    "payment_intent_id IS NOT NULL"
    " AND pi_status IN ('requires_action', 'requires_confirmation', 'requires_payment_method')"
    " AND total > 0"
    " AND (pi_version IS NULL OR pi_version != version OR pi_amount IS NULL OR pi_amount != total)"
)


class Cart(db.Model):
    """A shopper's cart; `version` counts content changes, the PaymentIntent columns mirror Stripe.

    `total` is the current version's total (its snapshot's), kept on the row so that "does the
    PaymentIntent lag behind the cart?" is a condition on one row.
    """

    __tablename__ = "carts"
    # payments.sync.LAGGING: the carts whose PaymentIntent a worker must still update (what its poll reads).
    __table_args__ = (Index("ix_carts_lagging", "id", postgresql_where=text(LAGGING), sqlite_where=text(LAGGING)),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=1)
    total: Mapped[int] = mapped_column(default=0, server_default="0")
    status: Mapped[str] = mapped_column(String(16), default="open")
    currency: Mapped[str] = mapped_column(String(3))
    frozen_at: Mapped[datetime | None]
    # Which client a freeze was made for (its address and its session's id), cleared when it ends: what
    # the handshake's reservation limits count (checkout.holds).
    frozen_from: Mapped[str | None] = mapped_column(String(64), index=True)
    frozen_session: Mapped[str | None] = mapped_column(String(32), index=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    # Never written: the client secret is read from Stripe when a page needs it. The column is emptied by
    # revision a7d3c5e9f1b4 and dropped by a later release, so that the previous release's processes,
    # still serving while a release's migration runs, keep reading a column that exists.
    client_secret: Mapped[str | None] = mapped_column(String(255))
    pi_amount: Mapped[int | None]
    pi_version: Mapped[int | None]
    pi_status: Mapped[str | None] = mapped_column(String(32))
    checkout_count: Mapped[int] = mapped_column(default=0)
    sync_owner: Mapped[str | None] = mapped_column(String(64))
    sync_lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What the merchant changed in this version (prices, withdrawn products), for the page to show;
    # cleared by the next change.
    notices: Mapped[list | None] = mapped_column(JSON)
    # When the content last changed (a new version): what "abandoned" is measured from.
    changed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    lines: Mapped[list["CartLine"]] = relationship(
        back_populates="cart", cascade="all, delete-orphan", order_by="CartLine.position"
    )


class CartIdCounter(db.Model):
    """One row: the last cart id handed out on SQLite (PostgreSQL uses carts.id's sequence).

    A visitor gets a cart id (and its Socket.IO room) before the cart has a row; SQLite would hand a
    row-less id to the next INSERT, so ids come from here instead.
    """

    __tablename__ = "cart_id_counter"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_id: Mapped[int]


class CartLine(db.Model):
    __tablename__ = "cart_lines"

    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    quantity: Mapped[int]
    # The price of the cart version the line is in (a price change makes a new version).
    unit_amount: Mapped[int]
    position: Mapped[int] = mapped_column(default=0)

    cart: Mapped[Cart] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship(lazy="joined")


class CartSnapshot(db.Model):
    """The exact lines and total of one cart version: what a PaymentIntent's metadata names."""

    __tablename__ = "cart_snapshots"

    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    items: Mapped[list] = mapped_column(JSON)
    total: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))


class Order(db.Model):
    """One payment attempt's order: a snapshot of one cart version under one PaymentIntent."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("payment_intent_id", "cart_version", name="uq_orders_pi_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id"), index=True)
    payment_intent_id: Mapped[str] = mapped_column(String(255), index=True)
    cart_version: Mapped[int]
    status: Mapped[str] = mapped_column(String(32), index=True)
    amount: Mapped[int]
    amount_received: Mapped[int] = mapped_column(default=0)
    refund_due: Mapped[int] = mapped_column(default=0)
    amount_refunded: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3))
    items: Mapped[list] = mapped_column(JSON)
    # How it was paid ({type, brand?, last4}) and, for a failed payment, Stripe's reason: the order page shows both.
    payment_method: Mapped[dict | None] = mapped_column(JSON)
    failure_reason: Mapped[str | None] = mapped_column(String(255))
    # What Stripe said after the payment settled that the merchant must see (a dispute, a failed refund):
    # the admin's queue shows these orders first. Cleared when a dispute ends in the merchant's favour.
    attention: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookEvent(db.Model):
    """A Stripe event received once (the primary key makes a second delivery a conflict, not a check), kept
    as an inbox: what its handler needs, and when it is next due (None: nothing left to do)."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    # The PaymentIntent or charge the event names, and when Stripe created the event.
    object_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime | None]
    # Due from its receipt, or from the end of its backoff after a failure; None once processed.
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    # A process working on the event holds it until then (one that dies lets it go then).
    claimed_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    # The last failure of its handler ("TypeError: ..."), shown to the merchant once it keeps failing.
    last_error: Mapped[str | None] = mapped_column(String(500))


class StoreIdentity(db.Model):
    """This database's one identity, made once: what tells its Stripe objects from another store's."""

    __tablename__ = "store_identity"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    store_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PaymentAttempt(db.Model):
    """One PaymentIntent create, recorded before Stripe is asked: its random token is the idempotency key.

    `cart_id` has no foreign key on purpose: the record of which PaymentIntents this store created
    outlives a cart removed as abandoned. `payment_intent_id` is set once Stripe's answer arrives; an
    attempt still `pending` had its answer lost, and the next checkout asks again with the same key.
    """

    __tablename__ = "payment_attempts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    cart_id: Mapped[int] = mapped_column(index=True)
    cart_version: Mapped[int]
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When reconciliation last asked Stripe about it: the sweep asks the least recently checked first, so
    # PaymentIntents carts still hold (which may stay unpaid for long) take turns instead of blocking it.
    checked_at: Mapped[datetime | None]


class StockReservation(db.Model):
    """Units of a product held by a frozen cart's order until its payment succeeds (sold) or not (released)."""

    __tablename__ = "stock_reservations"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True, index=True)
    quantity: Mapped[int]


class OrderHistory(db.Model):
    """An append-only line of what happened to a payment: handshake, Stripe's word, syncs, refunds."""

    __tablename__ = "order_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(index=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    order_id: Mapped[int | None] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkerHeartbeat(db.Model):
    """When each worker (host:pid) last began a turn of its loop: what /readyz and /metrics read its health from."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(index=True)
