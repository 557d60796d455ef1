"""Socket.IO handlers: the server picks the room from the HTTP session, never from the client."""

from flask import current_app, session
from flask_socketio import ConnectionRefusedError, emit, join_room

from ..cart.service import read_cart
from ..extensions import socketio
from ..wiring import current_shop
from .limits import SocketBusy
from .publish import cart_room


def _read_session_cart(cart_id):
    """The cart, read in one of the sockets' database slots (a cart with no row yet reads as empty)."""
    with current_app.extensions["socket_limits"].db_slot():
        return read_cart(current_shop(), cart_id)


@socketio.on("connect")
def on_connect(auth=None):
    """Join the session's cart room and send the cart, so a (re)connected tab starts current."""
    cart_id = session.get("cart_id")
    if not isinstance(cart_id, int):
        raise ConnectionRefusedError("no cart in this session: load the store first")
    try:
        view = _read_session_cart(cart_id)
    except SocketBusy as err:
        raise ConnectionRefusedError("the store is busy: try again") from err
    join_room(cart_room(cart_id))
    emit("cart", view)


@socketio.on("get_cart")
def on_get_cart(*_args):
    """Answer the session's cart (the acknowledgement carries it); arguments are ignored."""
    cart_id = session.get("cart_id")
    if not isinstance(cart_id, int):
        return {"error": {"code": "no_cart", "message": "no cart in this session"}}
    try:
        return _read_session_cart(cart_id)
    except SocketBusy:
        return {"error": {"code": "busy", "message": "the store is busy; try again"}}
