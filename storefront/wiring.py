"""Build a Shop from the running app, and find the session's cart."""

from flask import current_app, session

from .cart.service import create_cart
from .extensions import db
from .models import Cart, utcnow
from .shop import Shop


def current_shop():
    """The collaborators of this app, around the request's (or task's) database session."""
    app = current_app
    return Shop(
        session=db.session,
        gateway=app.extensions["gateway"],
        publish=app.extensions["publisher"],
        schedule_sync=app.extensions["sync"].schedule,
        now=utcnow,
        freeze_seconds=app.config["FREEZE_SECONDS"],
        currency=app.config["CURRENCY"],
    )


def session_cart_id(shop):
    """The session's cart id, creating the cart (and setting the cookie) on first use."""
    cart_id = session.get("cart_id")
    if isinstance(cart_id, int) and shop.session.get(Cart, cart_id) is not None:
        return cart_id
    cart = create_cart(shop)
    session["cart_id"] = cart.id
    session.permanent = True
    return cart.id
