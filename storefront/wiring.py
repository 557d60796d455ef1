"""Build a Shop from the running app, and find the session's cart."""

from flask import current_app, session

from .cart.service import create_cart
from .errors import NotFound
from .extensions import db
from .models import utcnow
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


def with_session_cart(shop, use):
    """`use(cart_id)` on the session's cart, starting a new cart (and setting the cookie) when it has none.

    The signed cookie's id is trusted without a lookup: the use case reads the cart anyway, and one that
    no longer exists (cart_not_found) is replaced by a new one, as a first visit would be.
    """
    cart_id = session.get("cart_id")
    if isinstance(cart_id, int):
        try:
            return use(cart_id)
        except NotFound as err:
            if err.code != "cart_not_found":
                raise
    cart_id = create_cart(shop)
    session["cart_id"] = cart_id
    session.permanent = True
    return use(cart_id)
