"""The baseline: a bare Flask-SocketIO broadcast server (no storefront logic), in the storefront's async mode.

`python -m bench.bare_server` serves on 127.0.0.1:$PORT. A tab joins the room named in its query
(`?room=7`); `POST /rooms/<room>/change` pushes the JSON body to that room as a `cart` event.
"""

import eventlet

eventlet.monkey_patch()

import os  # noqa: E402

from flask import Flask, jsonify, request  # noqa: E402
from flask_socketio import SocketIO, join_room  # noqa: E402

app = Flask(__name__)
socketio = SocketIO(app, async_mode=os.environ.get("SOCKETIO_ASYNC_MODE", "eventlet"))


@socketio.on("connect")
def on_connect(auth=None):
    """Join the room the tab names."""
    join_room(request.args.get("room", "lobby"))


@app.get("/api/products")
def ready():
    """Answers 200 once serving (the readiness probe bench.stack uses)."""
    return jsonify([])


@app.post("/rooms/<room>/change")
def change(room):
    """Push the body to the room, as the storefront pushes a committed cart."""
    body = request.get_json()
    socketio.emit("cart", body, to=room)
    return jsonify(body)


if __name__ == "__main__":
    socketio.run(
        app, host="127.0.0.1", port=int(os.environ["PORT"]), max_size=int(os.environ.get("MAX_CONNECTIONS", "1024"))
    )
