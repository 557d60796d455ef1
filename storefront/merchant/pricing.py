"""Carts follow the catalog: a price change or a withdrawn product makes a new version of each open cart."""

import logging

from sqlalchemy import select

from ..cart import domain, repository
from ..errors import NotFound
from ..models import CartLine, Product

log = logging.getLogger(__name__)


def _catalog(session, product_ids):
    rows = session.execute(
        select(Product.id, Product.unit_amount, Product.active).where(Product.id.in_(sorted(product_ids)))
    ).all()
    return {row.id: (row.unit_amount, row.active) for row in rows}


def reprice_locked(conn, state):
    """Bring an open cart (its row locked by the caller) to the catalog's prices as a new version; the new
    state, or None when nothing changed."""
    if state.status != "open" or not state.lines:
        return None
    lines, notices = domain.repriced(state.lines, _catalog(conn, state.quantities), state.currency)
    if not notices:
        return None
    new = repository.write_repriced(conn, state, lines, notices)
    log.info("cart %s v%s: %s", state.id, new.version, "; ".join(n["message"] for n in notices))
    return new


def catalog_moved(conn, items):
    """Lock the products of a cart's items (as the handshake's stock count does, in id order) and say whether
    a price or withdrawal committed since has not reached these lines yet."""
    rows = conn.execute(
        select(Product.id, Product.unit_amount, Product.active)
        .where(Product.id.in_(sorted({item["product_id"] for item in items})))
        .order_by(Product.id)
        .with_for_update()
    ).all()
    catalog = {row.id: (row.unit_amount, row.active) for row in rows}
    return any(catalog.get(item["product_id"]) != (item["unit_amount"], True) for item in items)


def follow_catalog(shop, cart_id):
    """Reprice one cart now (a handshake found it behind the catalog): commit, push, sync; its new view."""
    view, _ = _reprice_one(shop, cart_id)
    return view


def _reprice_one(shop, cart_id):
    with shop.uow() as uow:
        repository.lock(uow.conn, cart_id)
        state = repository.read(uow.conn, cart_id)[0]
        new = reprice_locked(uow.conn, state)
        view = (new or state).view()
        if new is not None:
            uow.after_commit(lambda: (shop.publish.cart(view), shop.schedule_sync(cart_id)))
        uow.commit()
    return view, new is not None


def open_carts_holding(session, product_id):
    """Ids of open carts with a line of the product."""
    from ..models import Cart

    query = (
        select(CartLine.cart_id)
        .join(Cart, Cart.id == CartLine.cart_id)
        .where(CartLine.product_id == product_id, Cart.status == "open")
    )
    return sorted(set(session.execute(query).scalars()))


def reprice_carts(shop, product_id):
    """Move every open cart holding the product to a new version at its current price (or without it),
    pushed to the cart's tabs; the PaymentIntent follows through the usual sync. Returns the carts moved."""
    cart_ids = open_carts_holding(shop.session, product_id)
    shop.session.commit()
    moved = []
    for cart_id in cart_ids:
        try:
            _, changed = _reprice_one(shop, cart_id)
        except NotFound:  # removed as abandoned since it was listed: nothing left to reprice
            continue
        if changed:
            moved.append(cart_id)
    return moved
