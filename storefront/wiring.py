"""Build a Shop from the running app, and find the session's cart."""

from flask import current_app, request, session

from .cart.service import create_cart, discard_unchanged_cart, reserve_cart_id
from .checkout.holds import Limits
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
        schedule_sync=app.extensions["worker"].schedule,
        now=utcnow,
        freeze_seconds=app.config["FREEZE_SECONDS"],
        reservation_seconds=app.config["RESERVATION_SECONDS"],
        hold_limits=hold_limits(app.config),
        currency=app.config["CURRENCY"],
    )


def hold_limits(config):
    """What one client may hold in frozen carts, from the RESERVE_* settings."""
    return Limits(
        session_freezes=config["RESERVE_FREEZES_PER_SESSION"],
        session_units=config["RESERVE_UNITS_PER_SESSION"],
        address_freezes=config["RESERVE_FREEZES_PER_ADDRESS"],
        address_units=config["RESERVE_UNITS_PER_ADDRESS"],
    )


def session_cart_id():
    """The cart id in the signed session cookie, or None."""
    cart_id = session.get("cart_id")
    return cart_id if isinstance(cart_id, int) and not isinstance(cart_id, bool) else None


def new_session_cart_id(shop):
    """Give the session a cart id (and the cookie); no row is written until the cart first changes."""
    cart_id = reserve_cart_id(shop)
    session["cart_id"] = cart_id
    session.permanent = True
    return cart_id


def with_session_cart(shop, use):
    """`use(cart_id)` on the session's cart.

    A visitor who has changed nothing has no cart row. A read (GET) runs on the session's cart id as it is
    (None without one) and writes nothing. A change or a checkout writes the cart first when it has no row
    (under the reserved id; a cart removed as abandoned gets a new id, the session remembering which id was
    written), and removes it again if the use case then fails, so a refused first request leaves no row
    behind either. The signed cookie's id is trusted without a lookup.
    """
    if request.method in ("GET", "HEAD"):
        return use(session_cart_id())
    cart_id = session_cart_id()
    if cart_id is None:
        cart_id = new_session_cart_id(shop)
    else:
        try:
            answer = use(cart_id)
        except NotFound as err:
            if err.code != "cart_not_found":
                raise
        else:
            _remember_written(cart_id)  # a change went through: the row exists
            return answer
        if session.get("cart_written") == cart_id:
            # The row was written, then removed as abandoned: a new id, so nothing of the old cart (payment
            # attempts, a tab still at its version 7) is taken for the new one's.
            cart_id = new_session_cart_id(shop)
    created = create_cart(shop, cart_id)
    try:
        answer = use(cart_id)
    except Exception:
        if created:
            discard_unchanged_cart(shop, cart_id)
        raise
    _remember_written(cart_id)
    return answer


def _remember_written(cart_id):
    """The session's cart has a row (a reserved id that was never written has not: it is used as it is)."""
    if session.get("cart_written") != cart_id:
        session["cart_written"] = cart_id
