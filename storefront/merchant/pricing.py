"""Carts follow the catalog: a price change or a withdrawn product makes a new version of each open cart."""

import logging

from sqlalchemy import func, select

from ..cart import domain, repository
from ..errors import NotFound
from ..models import Cart, CartLine, Product

log = logging.getLogger(__name__)

products, carts, lines = Product.__table__, Cart.__table__, CartLine.__table__


def _catalog(conn, product_ids):
    rows = conn.execute(
        select(products.c.id, products.c.unit_amount, products.c.active).where(products.c.id.in_(sorted(product_ids)))
    ).all()
    return {row.id: (row.unit_amount, row.active) for row in rows}


def reprice_locked(conn, state):
    """Bring an open cart (its row locked by the caller) to the catalog's prices as a new version.

    Returns the new CartState, or None when the cart is not open or already at the catalog's prices.
    """
    if state.status != "open" or not state.lines:
        return None
    repriced, notices = domain.repriced(state.lines, _catalog(conn, state.quantities), state.currency)
    if not notices:
        return None
    new = repository.write_repriced(conn, state, repriced, notices)
    log.info("cart %s v%s: %s", state.id, new.version, "; ".join(n["message"] for n in notices))
    return new


def catalog_moved(conn, items):
    """Lock the products of a cart's items (as the handshake's stock count does, in id order) and say whether
    a price or withdrawal committed since has not reached these lines yet."""
    rows = conn.execute(
        select(products.c.id, products.c.unit_amount, products.c.active)
        .where(products.c.id.in_(sorted({item["product_id"] for item in items})))
        .order_by(products.c.id)
        .with_for_update()
    ).all()
    catalog = {row.id: (row.unit_amount, row.active) for row in rows}
    return any(catalog.get(item["product_id"]) != (item["unit_amount"], True) for item in items)


def _follow(shop, cart_id):
    """In one unit of work: lock the cart, reprice it; (its view, whether it moved). NotFound if it is gone."""
    with shop.uow() as uow:
        repository.lock(uow.conn, cart_id)
        state, _ = repository.read(uow.conn, cart_id)
        new = reprice_locked(uow.conn, state)
        if new is not None:
            uow.after_commit(lambda: shop.publish.cart(new.view()))
            uow.after_commit(lambda: shop.schedule_sync(cart_id))
        uow.commit()
    return (new or state).view(), new is not None


def follow_catalog(shop, cart_id):
    """Reprice one cart now (a handshake found it behind the catalog): commit, push, sync; its new view."""
    return _follow(shop, cart_id)[0]


def open_carts_holding(conn, product_id):
    """Ids of open carts with a line of the product."""
    query = (
        select(lines.c.cart_id)
        .join(carts, carts.c.id == lines.c.cart_id)
        .where(lines.c.product_id == product_id, carts.c.status == "open")
    )
    return sorted(set(conn.execute(query).scalars()))


def reprice_carts(shop, product_id):
    """Move every open cart holding the product to a new version at its current price (or without it),
    pushed to the cart's tabs; the PaymentIntent follows through the usual sync. Returns the carts moved."""
    with shop.uow() as uow:
        cart_ids = open_carts_holding(uow.conn, product_id)
        uow.commit()
    moved = []
    for cart_id in cart_ids:  # one unit of work per cart: no cart's lock waits for the others'
        try:
            _, changed = _follow(shop, cart_id)
        except NotFound:  # removed as abandoned since it was listed: nothing left to reprice
            continue
        if changed:
            moved.append(cart_id)
    return moved


def price_preview(shop, product_id, new_unit_amount):
    """[(total now, total at the new price)] of the open carts holding the product, what a price change
    would do to each (the admin asks the merchant to confirm this before saving)."""
    holding = select(lines.c.cart_id, lines.c.quantity, lines.c.unit_amount).where(lines.c.product_id == product_id)
    holding = holding.subquery()
    query = (
        select(func.sum(lines.c.quantity * lines.c.unit_amount), holding.c.quantity, holding.c.unit_amount)
        .join(holding, holding.c.cart_id == lines.c.cart_id)
        .join(carts, carts.c.id == lines.c.cart_id)
        .where(carts.c.status == "open")
        .group_by(lines.c.cart_id, holding.c.quantity, holding.c.unit_amount)
        .order_by(lines.c.cart_id)
    )
    with shop.uow() as uow:
        rows = uow.conn.execute(query).all()
        uow.commit()
    return [
        (int(total), int(total) + quantity * (new_unit_amount - old))
        for total, quantity, old in rows
        if old != new_unit_amount  # a cart already at this price does not change
    ]
