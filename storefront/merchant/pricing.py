"""Carts follow the catalog: a price change or a withdrawn product makes a new version of each open cart."""

import logging

from sqlalchemy import select

from ..cart import domain, repository
from ..cart.service import lock_cart
from ..errors import NotFound
from ..models import CartLine, Product

log = logging.getLogger(__name__)


def _catalog(session, product_ids):
    rows = session.execute(
        select(Product.id, Product.unit_amount, Product.active).where(Product.id.in_(sorted(product_ids)))
    ).all()
    return {row.id: (row.unit_amount, row.active) for row in rows}


def reprice_locked(session, cart):
    """Bring an open cart (a locked model) to the catalog's prices as a new version; True if it changed."""
    session.flush()
    state = repository.state_of(cart)
    if state.status != "open" or not state.lines:
        return False
    lines, notices = domain.repriced(state.lines, _catalog(session, state.quantities), state.currency)
    if not notices:
        return False
    repository.write_repriced(session.connection(), state, lines, notices)
    session.expire(cart)  # written in Core: the model reloads its version and lines
    log.info("cart %s v%s: %s", cart.id, state.version + 1, "; ".join(n["message"] for n in notices))
    return True


def catalog_moved(session, items):
    """Lock the products of a cart's items (as the handshake's stock count does, in id order) and say whether
    a price or withdrawal committed since has not reached these lines yet."""
    rows = session.execute(
        select(Product.id, Product.unit_amount, Product.active)
        .where(Product.id.in_(sorted({item["product_id"] for item in items})))
        .order_by(Product.id)
        .with_for_update()
    ).all()
    catalog = {row.id: (row.unit_amount, row.active) for row in rows}
    return any(catalog.get(item["product_id"]) != (item["unit_amount"], True) for item in items)


def follow_catalog(shop, cart_id):
    """Reprice one cart now (a handshake found it behind the catalog): commit, push, sync; its new view."""
    cart = lock_cart(shop.session, cart_id)
    changed = reprice_locked(shop.session, cart)
    view = repository.state_of(cart).view()
    shop.session.commit()
    if changed:
        shop.publish.cart(view)
        shop.schedule_sync(cart_id)
    return view


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
            cart = lock_cart(shop.session, cart_id)
        except NotFound:  # removed as abandoned since it was listed: nothing left to reprice
            shop.session.rollback()
            continue
        changed = reprice_locked(shop.session, cart)
        view = repository.state_of(cart).view() if changed else None
        shop.session.commit()
        if changed:
            moved.append(cart_id)
            shop.publish.cart(view)
            shop.schedule_sync(cart_id)
    return moved
