"""Room names and emits: the only place that knows how pushes are addressed."""


def cart_room(cart_id):
    return f"cart:{cart_id}"


class SocketPublisher:
    """Pushes committed state to every tab of one cart."""

    def __init__(self, socketio):
        self._socketio = socketio

    def cart(self, view):
        """Push the cart (with its version) to its room."""
        self._socketio.emit("cart", view, to=cart_room(view["id"]))

    def order(self, cart_id, order):
        """Push an order's new status to the cart's room."""
        self._socketio.emit("order", order, to=cart_room(cart_id))
