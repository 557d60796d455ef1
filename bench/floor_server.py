"""The floor: what a cart change must cost on the storefront's stack, and nothing more.

`python -m bench.floor_server` serves on 127.0.0.1:$PORT from $DATABASE_URL (PostgreSQL), in the
schema `floor`, which it creates with its own three tables (products, carts, cart lines). Same
stack as `python wsgi.py`: eventlet, psycopg 3 with its wait made green, Flask, Flask-SocketIO.

It speaks the storefront's public contract as far as the benchmark's load driver uses it:
`GET /api/cart` (starts a cart and sets the signed session cookie), `POST /api/cart/items`
(`{product_id, quantity}`), `PUT /api/cart/items/<product_id>` (`{quantity}`, 0 removes), a
Socket.IO tab that joins its session's cart room and receives `cart` pushes carrying the version.
A change is one read (cart, lines and the product, one statement), one write guarded by the version
read (one statement that commits itself; read again if another change came first) and one emit to
the cart's room. No rate limiter, no PaymentIntent, no snapshot, no session re-signing.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # as wsgi.py: known, see README

import eventlet  # noqa: E402

eventlet.monkey_patch()

import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import psycopg  # noqa: E402
import psycopg.waiting  # noqa: E402
from eventlet.queue import LightQueue  # noqa: E402
from flask import Flask, jsonify, request, session  # noqa: E402
from flask_socketio import ConnectionRefusedError, SocketIO, emit, join_room  # noqa: E402

# psycopg 3 waits in C unless told otherwise, which would block every green thread (as in wsgi.py).
psycopg.waiting.wait = psycopg.waiting.wait_select

MAX_QUANTITY = 99
LOST_RACES_ALLOWED = 20  # each lost race means another change landed, so the cart is moving on
CATALOG = [  # the storefront's demo catalog, so that totals look alike
    ("Single-origin coffee beans, 1 kg", 2400),
    ("Ceramic pour-over dripper", 3200),
    ("Gooseneck kettle", 6500),
    ("Burr grinder", 12900),
    ("Paper filters, 100 pack", 700),
    ("Insulated travel mug", 2800),
    ("Digital brew scale", 4500),
    ("Barista apron", 3900),
]

SCHEMA = """
SELECT pg_advisory_xact_lock(hashtext('bench.floor_server'));
CREATE SCHEMA IF NOT EXISTS floor;
CREATE TABLE IF NOT EXISTS floor.products (
    id integer PRIMARY KEY, name text NOT NULL, unit_amount integer NOT NULL);
CREATE TABLE IF NOT EXISTS floor.carts (
    id bigserial PRIMARY KEY, version integer NOT NULL DEFAULT 1, total integer NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS floor.cart_lines (
    cart_id bigint NOT NULL REFERENCES floor.carts ON DELETE CASCADE,
    product_id integer NOT NULL REFERENCES floor.products,
    quantity integer NOT NULL, position integer NOT NULL, PRIMARY KEY (cart_id, product_id));
"""
SEED = "INSERT INTO floor.products (id, name, unit_amount) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING"
# One statement: the cart's row and lines, plus a row for the product named (cart columns null).
READ = """
SELECT c.version, l.product_id, p.name, p.unit_amount, l.quantity, l.position
FROM floor.carts c
LEFT JOIN floor.cart_lines l ON l.cart_id = c.id LEFT JOIN floor.products p ON p.id = l.product_id
WHERE c.id = %(cart)s
UNION ALL
SELECT NULL, id, name, unit_amount, NULL, NULL FROM floor.products WHERE id = %(product)s
"""
# One statement, optimistic on the version: if another change came first, nothing is written.
WRITE = """
WITH bumped AS (
    UPDATE floor.carts SET version = version + 1, total = %(total)s
    WHERE id = %(cart)s AND version = %(version)s RETURNING id
), removed AS (
    DELETE FROM floor.cart_lines
    WHERE cart_id IN (SELECT id FROM bumped) AND product_id = %(product)s AND %(quantity)s = 0
), written AS (
    INSERT INTO floor.cart_lines (cart_id, product_id, quantity, position)
    SELECT id, %(product)s, %(quantity)s, %(position)s FROM bumped WHERE %(quantity)s > 0
    ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = EXCLUDED.quantity
)
SELECT count(*) FROM bumped
"""


class BadInput(Exception):
    """A request the contract refuses: answered as {error: {code, message}} with `status`."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code = status, code


class Pool:
    """A fixed set of autocommit connections; waiting for one is green."""

    def __init__(self, url, size):
        self._url, self._idle = url, LightQueue()
        for _ in range(size):
            self._idle.put(None)  # opened on first use

    @contextmanager
    def connection(self):
        """An idle connection (opened if need be) for the block, then back to the pool."""
        conn = self._idle.get()
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(self._url, autocommit=True)
            yield conn
        except psycopg.OperationalError:
            if conn is not None:
                conn.close()
            conn = None  # broken: the next user opens a new one
            raise
        finally:
            self._idle.put(conn)


def create_schema(url):
    """The floor's own schema and catalog (idempotent; serialised for processes started together)."""
    with psycopg.connect(url) as conn:
        conn.execute(SCHEMA)
        with conn.cursor() as cur:
            cur.executemany(SEED, [(i, name, amount) for i, (name, amount) in enumerate(CATALOG, 1)])


def parse_id(value):
    """A product id: a positive integer (a JSON number, or digits in the URL)."""
    if isinstance(value, str):
        value = int(value) if value.isascii() and value.isdigit() and len(value) <= 10 else None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise BadInput(400, "invalid_product_id", "product_id must be a positive integer")
    return value


def parse_quantity(value, low):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_QUANTITY:
        raise BadInput(400, "invalid_quantity", f"quantity must be an integer from {low} to {MAX_QUANTITY}")
    return value


def json_object():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput(400, "invalid_json", "the body must be a JSON object")
    return body


def read(conn, cart_id, product_id=None):
    """(version, lines by product id, the named product as (name, unit_amount)); version None: no such cart."""
    version, lines, product = None, {}, None
    for row in conn.execute(READ, {"cart": cart_id, "product": product_id}):
        if row[0] is None:
            product = (row[2], row[3])
            continue
        version = row[0]
        if row[1] is not None:
            lines[row[1]] = {
                "product_id": row[1],
                "name": row[2],
                "unit_amount": row[3],
                "quantity": row[4],
                "position": row[5],
            }
    return version, lines, product


def view(cart_id, version, lines):
    """The cart as the storefront's API and `cart` push show it (no payment here)."""
    items = [
        {
            "product_id": line["product_id"],
            "name": line["name"],
            "unit_amount": line["unit_amount"],
            "quantity": line["quantity"],
            "line_total": line["unit_amount"] * line["quantity"],
        }
        for line in sorted(lines.values(), key=lambda line: line["position"])
    ]
    return {
        "id": cart_id,
        "version": version,
        "status": "open",
        "currency": "usd",
        "items": items,
        "total": sum(item["line_total"] for item in items),
        "payment": None,
    }


def attempt(conn, cart_id, product_id, new_quantity):
    """Read, set the line to `new_quantity(old quantity)`, write if still that version: the new view, or None."""
    version, lines, product = read(conn, cart_id, product_id)
    if version is None:
        raise BadInput(404, "cart_not_found", "This cart does not exist.")
    if product is None:
        raise BadInput(404, "product_not_found", "No such product.")
    old = lines.pop(product_id, None)
    quantity = new_quantity(old["quantity"] if old else 0)
    position = old["position"] if old else max((line["position"] for line in lines.values()), default=0) + 1
    if quantity:
        lines[product_id] = {
            "product_id": product_id,
            "name": product[0],
            "unit_amount": product[1],
            "quantity": quantity,
            "position": position,
        }
    answer = view(cart_id, version + 1, lines)
    written = conn.execute(
        WRITE,
        {
            "cart": cart_id,
            "version": version,
            "total": answer["total"],
            "product": product_id,
            "quantity": quantity,
            "position": position,
        },
    ).fetchone()[0]
    return answer if written else None


class Floor:
    """The floor's routes and Socket.IO handler over one connection pool."""

    def __init__(self, socketio, pool):
        self.socketio, self.pool = socketio, pool

    @staticmethod
    def session_cart(conn):
        """The session's cart id, starting a cart (and setting the cookie) when it has none."""
        cart_id = session.get("cart_id")
        if not isinstance(cart_id, int):
            cart_id = conn.execute("INSERT INTO floor.carts DEFAULT VALUES RETURNING id").fetchone()[0]
            session["cart_id"] = cart_id
        return cart_id

    def change(self, product_id, new_quantity):
        """One change: written (read again if another change came first), then pushed; answers the view."""
        with self.pool.connection() as conn:
            cart_id = self.session_cart(conn)
            for _ in range(LOST_RACES_ALLOWED):
                answer = attempt(conn, cart_id, product_id, new_quantity)
                if answer is not None:
                    break
            else:
                raise BadInput(409, "cart_busy", "The cart kept changing; try again.")
        self.socketio.emit("cart", answer, to=f"cart:{cart_id}")
        return jsonify(answer)

    def products(self):
        """The catalog (also the readiness probe bench.stack uses)."""
        return jsonify(
            [
                {"id": i, "name": name, "unit_amount": amount, "currency": "usd"}
                for i, (name, amount) in enumerate(CATALOG, 1)
            ]
        )

    def get_cart(self):
        """The session's cart, started if it has none."""
        with self.pool.connection() as conn:
            cart_id = self.session_cart(conn)
            version, lines, _ = read(conn, cart_id)
        if version is None:
            raise BadInput(404, "cart_not_found", "This cart does not exist.")
        return jsonify(view(cart_id, version, lines))

    def add_item(self):
        """Add `quantity` (default 1) of `product_id`; a line holds at most 99."""
        body = json_object()
        product_id = parse_id(body.get("product_id"))
        quantity = parse_quantity(body.get("quantity", 1), 1)

        def added(old):
            if old + quantity > MAX_QUANTITY:
                raise BadInput(400, "invalid_quantity", f"a line can hold at most {MAX_QUANTITY} items")
            return old + quantity

        return self.change(product_id, added)

    def set_quantity(self, product_id):
        """Set one line's quantity (0 removes it)."""
        product_id = parse_id(product_id)
        quantity = parse_quantity(json_object().get("quantity"), 0)
        return self.change(product_id, lambda _old: quantity)

    def on_connect(self, auth=None):
        """Join the session's cart room and send the cart, as the storefront does."""
        cart_id = session.get("cart_id")
        if not isinstance(cart_id, int):
            raise ConnectionRefusedError("no cart in this session: load the store first")
        with self.pool.connection() as conn:
            version, lines, _ = read(conn, cart_id)
        if version is None:
            raise ConnectionRefusedError("unknown cart")
        join_room(f"cart:{cart_id}")
        emit("cart", view(cart_id, version, lines))


def bad_input(err):
    return jsonify({"error": {"code": err.code, "message": str(err)}}), err.status


def create_app(url, secret_key, pool_size=20):
    """The floor's Flask app and its SocketIO."""
    app = Flask(__name__)
    app.secret_key = secret_key
    socketio = SocketIO(app, async_mode="eventlet", manage_session=False)
    floor = Floor(socketio, Pool(url, pool_size))
    app.register_error_handler(BadInput, bad_input)
    app.add_url_rule("/api/products", view_func=floor.products, methods=["GET"])
    app.add_url_rule("/api/cart", view_func=floor.get_cart, methods=["GET"])
    app.add_url_rule("/api/cart/items", view_func=floor.add_item, methods=["POST"])
    app.add_url_rule("/api/cart/items/<product_id>", view_func=floor.set_quantity, methods=["PUT"])
    socketio.on_event("connect", floor.on_connect)
    return app, socketio


def main():
    url = os.environ["DATABASE_URL"]
    create_schema(url)
    app, socketio = create_app(url, os.environ["SECRET_KEY"], int(os.environ.get("FLOOR_POOL_SIZE", 20)))
    gc.collect()
    gc.freeze()  # as wsgi.py does: long-lived objects stay out of the collector's full passes
    print(json.dumps({"floor_server": f"http://127.0.0.1:{os.environ['PORT']}/"}), flush=True)
    socketio.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        log_output=False,
        max_size=int(os.environ.get("MAX_CONNECTIONS", 10000)),
    )


if __name__ == "__main__":
    main()
