"""Socket.IO handlers: the server picks the room from the HTTP session, never from the client."""

from flask import session
from flask_socketio import ConnectionRefusedError, emit, join_room

from ..cart.service import read_cart
from ..errors import NotFound
from ..extensions import socketio
from ..wiring import current_shop
from .publish import cart_room


@socketio.on("connect")
def on_connect(auth=None):
    """Join the session's cart room and send the cart, so a (re)connected tab starts current."""
    cart_id = session.get("cart_id")
    if not isinstance(cart_id, int):
        raise ConnectionRefusedError("no cart in this session: load the store first")
    try:
        view = read_cart(current_shop(), cart_id)
    except NotFound as err:
        raise ConnectionRefusedError("unknown cart") from err
    join_room(cart_room(cart_id))
    emit("cart", view)


@socketio.on("get_cart")
def on_get_cart(*_args):
    """Answer the session's cart (the acknowledgement carries it); arguments are ignored."""
    cart_id = session.get("cart_id")
    if not isinstance(cart_id, int):
        return {"error": {"code": "no_cart", "message": "no cart in this session"}}
    try:
        return read_cart(current_shop(), cart_id)
    except NotFound:
        return {"error": {"code": "cart_not_found", "message": "unknown cart"}}
