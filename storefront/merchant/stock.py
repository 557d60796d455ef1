"""Stock held by frozen carts: reserved by the handshake, sold when paid, released otherwise.

Every path locks the product rows it counts (in id order, after the cart's row), so two handshakes for
the last unit are serialised by the database: the second counts the first's reservation.
"""

from sqlalchemy import delete, func, insert, select, update

from ..models import Cart, Order, Product, StockReservation
from . import domain

products, reservations = Product.__table__, StockReservation.__table__
carts, orders = Cart.__table__, Order.__table__


def lock_products(conn, product_ids):
    """{product_id: (name, stock)} for these products, their rows locked until commit."""
    if not product_ids:
        return {}
    rows = conn.execute(
        select(products.c.id, products.c.name, products.c.stock)
        .where(products.c.id.in_(sorted(product_ids)))
        .order_by(products.c.id)
        .with_for_update()
    ).all()
    return {row.id: (row.name, row.stock) for row in rows}


def held(conn, product_ids, *, besides_order=None):
    """{product_id: units reserved} by every order (but `besides_order`)."""
    query = (
        select(reservations.c.product_id, func.sum(reservations.c.quantity))
        .where(reservations.c.product_id.in_(sorted(product_ids)))
        .group_by(reservations.c.product_id)
    )
    if besides_order is not None:
        query = query.where(reservations.c.order_id != besides_order)
    return {pid: int(units) for pid, units in conn.execute(query).all()}


def reserved_by(conn, order_id):
    """{product_id: units} the order holds."""
    rows = conn.execute(
        select(reservations.c.product_id, reservations.c.quantity).where(reservations.c.order_id == order_id)
    ).all()
    return dict(rows)


def reserve(conn, order_id, items):
    """Hold the snapshot's units of tracked products for an order, or raise out_of_stock (nothing held)."""
    wanted = domain.wanted_units(items)
    locked = lock_products(conn, wanted)
    on_hand = {pid: stock for pid, (_, stock) in locked.items()}
    names = {pid: name for pid, (name, _) in locked.items()}
    hold = domain.reservation(wanted, on_hand, held(conn, wanted, besides_order=order_id), names)
    release(conn, order_id)
    if hold:
        conn.execute(
            insert(reservations),
            [{"order_id": order_id, "product_id": pid, "quantity": q} for pid, q in sorted(hold.items())],
        )
    return hold


def sell(conn, order_id, items):
    """Take a paid order's units from stock (its reservation first); False, taking nothing, if stock is gone."""
    wanted = domain.wanted_units(items)
    locked = lock_products(conn, wanted)
    on_hand = {pid: stock for pid, (_, stock) in locked.items()}
    taken = domain.sale(wanted, reserved_by(conn, order_id), on_hand, held(conn, wanted, besides_order=order_id))
    release(conn, order_id)
    if taken is None:
        return False
    for pid, units in sorted(taken.items()):
        conn.execute(update(products).where(products.c.id == pid).values(stock=products.c.stock - units))
    return True


def release(conn, order_id):
    """Give back whatever the order holds."""
    conn.execute(delete(reservations).where(reservations.c.order_id == order_id))


def reserved_units(conn, product_id):
    """Units of one product held by frozen carts."""
    return held(conn, [product_id]).get(product_id, 0)


def reserved_per_product(conn):
    """{product_id: units} held by frozen carts, for every product that has any held."""
    rows = conn.execute(
        select(reservations.c.product_id, func.sum(reservations.c.quantity)).group_by(reservations.c.product_id)
    ).all()
    return {pid: int(units) for pid, units in rows}


def frozen_carts(conn):
    """How many carts are frozen (whether or not they hold tracked stock)."""
    return conn.scalar(select(func.count()).where(carts.c.status == "frozen"))


def top_holders(conn, limit):
    """[(address, frozen carts, units reserved)] of the client addresses holding the most units, most first
    (freezes made before the address was recorded are under None)."""
    units = func.coalesce(func.sum(reservations.c.quantity), 0)
    rows = conn.execute(
        select(carts.c.frozen_from, func.count(func.distinct(carts.c.id)), units)
        .select_from(carts.outerjoin(orders, orders.c.cart_id == carts.c.id))
        .outerjoin(reservations, reservations.c.order_id == orders.c.id)
        .where(carts.c.status == "frozen")
        .group_by(carts.c.frozen_from)
        .order_by(units.desc(), carts.c.frozen_from)
        .limit(limit)
    ).all()
    return [(address, int(freezes), int(held_units)) for address, freezes, held_units in rows]
