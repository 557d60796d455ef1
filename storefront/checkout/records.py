"""Orders and a cart's checkout columns, read and written as Core statements on the caller's connection.

Reads return Rows (attribute access by column name), so `order_view` and `order_push` take them as they
come; every write of an order returns the row as it now is, in the same statement.
"""

from sqlalchemy import bindparam, exists, insert, select, update

from ..cart import repository
from ..models import Cart, CartSnapshot, Order

orders, carts, snapshots = Order.__table__, Cart.__table__, CartSnapshot.__table__

# A cart no longer frozen, and one that no longer holds a PaymentIntent (whose next checkout makes a new one).
# A freeze that ends forgets which client it was made for (checkout.holds counts only frozen carts).
OPEN = {"status": "open", "frozen_at": None, "frozen_from": None, "frozen_session": None}
NO_PAYMENT_INTENT = {
    "payment_intent_id": None,
    "pi_status": None,
    "pi_amount": None,
    "pi_version": None,
}

_ORDER = select(orders).where(orders.c.id == bindparam("order_id"))
_ORDER_OF_VERSION = select(orders).where(
    orders.c.payment_intent_id == bindparam("pi_id"), orders.c.cart_version == bindparam("version")
)
_CART_AND_METHOD = select(
    exists().where(carts.c.id == bindparam("cart_id")),
    exists().where(orders.c.payment_intent_id == bindparam("pi_id"), orders.c.payment_method.is_not(None)),
)
_CHECKOUT = select(carts.c.status, carts.c.payment_intent_id, carts.c.pi_version, carts.c.frozen_at).where(
    carts.c.id == bindparam("cart_id")
)
_MIRROR_STATUS = (
    update(carts)
    .where(carts.c.id == bindparam("cart_id"), carts.c.payment_intent_id == bindparam("pi_id"))
    .values(pi_status=bindparam("new_status"))
)


def locked_state(conn, cart_id):
    """The cart's CartState, its row locked until the caller's unit of work ends (NotFound without a cart)."""
    repository.lock(conn, cart_id)
    return repository.read(conn, cart_id)[0]


def order(conn, order_id, *, lock=False):
    """The order row (locked until the caller's transaction ends with `lock`), or None."""
    query = _ORDER.with_for_update() if lock else _ORDER
    return conn.execute(query, {"order_id": order_id}).one_or_none()


def orders_of(conn, pi_id, status=None):
    """The PaymentIntent's orders, oldest first (only those in `status` when given)."""
    query = select(orders).where(orders.c.payment_intent_id == pi_id)
    if status:
        query = query.where(orders.c.status == status)
    return conn.execute(query.order_by(orders.c.id)).all()


def order_of_version(conn, pi_id, version):
    """The order of one cart version under one PaymentIntent, or None."""
    return conn.execute(_ORDER_OF_VERSION, {"pi_id": pi_id, "version": version}).one_or_none()


def add_order(conn, **values):
    """Insert an order; the new row."""
    return conn.execute(insert(orders).values(**values).returning(*orders.c)).one()


def update_order(conn, order_id, **values):
    """Set columns of one order; the row as it now is."""
    return conn.execute(update(orders).where(orders.c.id == order_id).values(**values).returning(*orders.c)).one()


def update_orders(conn, pi_id, status, **values):
    """Set columns of the PaymentIntent's orders in `status`; the rows as they now are, oldest first."""
    query = (
        update(orders)
        .where(orders.c.payment_intent_id == pi_id, orders.c.status == status)
        .values(**values)
        .returning(*orders.c)
    )
    return sorted(conn.execute(query).all(), key=lambda row: row.id)


def cart_and_method(conn, cart_id, pi_id):
    """(whether the cart exists, whether an order of the PaymentIntent already says how it was paid), in one read."""
    cart_exists, method_known = conn.execute(_CART_AND_METHOD, {"cart_id": cart_id, "pi_id": pi_id}).one()
    return bool(cart_exists), bool(method_known)


def snapshot(conn, cart_id, version):
    """The lines and total of one cart version, or None."""
    query = select(snapshots).where(snapshots.c.cart_id == cart_id, snapshots.c.version == version)
    return conn.execute(query).one_or_none()


def checkout_of(conn, cart_id):
    """The cart's checkout columns beside its CartState (PaymentIntent version, freeze time),
    or None when there is no such cart."""
    return conn.execute(_CHECKOUT, {"cart_id": cart_id}).one_or_none()


def set_cart(conn, cart_id, **values):
    """Set checkout columns of a cart (its status, freeze, PaymentIntent) in the caller's transaction."""
    conn.execute(update(carts).where(carts.c.id == cart_id).values(**values))


def mirror_status(conn, cart_id, pi_id, status):
    """The cart's PaymentIntent status as Stripe last said it, if the cart still holds that PaymentIntent."""
    conn.execute(_MIRROR_STATUS, {"cart_id": cart_id, "pi_id": pi_id, "new_status": status})


def attach_payment_intent(conn, cart_id, pi):
    """The cart takes a PaymentIntent Stripe created for it (one more checkout started)."""
    set_cart(
        conn,
        cart_id,
        payment_intent_id=pi.id,
        pi_amount=pi.amount,
        pi_status=pi.status,
        pi_version=pi.cart_ref[1],
        checkout_count=carts.c.checkout_count + 1,
    )
