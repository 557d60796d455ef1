"""Cart rows read and written in a few Core statements: the path every cart change and every sync takes.

A change reads the cart, its lines and the product it names in one statement, applies the rule, and
writes the new lines, version, total and snapshot guarded by the version it read (and the cart being
open). Changes of one cart stay serialised: the guarded write takes the cart's row lock, and a write
computed from a version that has since moved on writes nothing, so the caller reads again (and, if
the cart keeps moving, locks it first). On PostgreSQL the read and the write are one statement each,
in autocommit (a `statements=True` unit of work); SQLite runs the same steps in its write transaction.
Checkout, fulfilment and the merchant's repricing read carts and write their lines and versions through
these functions too, inside their own unit of work, under the cart's row lock (`lock`); the checkout
and PaymentIntent columns are written by checkout/records.py and payments/sync.py.
"""

import json
from dataclasses import dataclass, replace

from sqlalchemy import Integer, bindparam, cast, delete, func, insert, null, select, text, union_all, update

from ..errors import NotFound
from ..models import (
    Cart,
    CartIdCounter,
    CartLine,
    CartSnapshot,
    Order,
    PaymentAttempt,
    Product,
    StockReservation,
    utcnow,
)
from . import domain

carts, lines_table, products, snapshots = (
    Cart.__table__,
    CartLine.__table__,
    Product.__table__,
    CartSnapshot.__table__,
)
reservations, attempts, orders = StockReservation.__table__, PaymentAttempt.__table__, Order.__table__
CART_COLUMNS = (
    carts.c.id,
    carts.c.version,
    carts.c.status,
    carts.c.currency,
    carts.c.payment_intent_id,
    carts.c.pi_amount,
    carts.c.pi_status,
    carts.c.notices,
)
# Units a shopper can still add: on hand minus what frozen carts hold (None when stock is not tracked).
AVAILABLE = products.c.stock - func.coalesce(
    select(func.sum(reservations.c.quantity))
    .where(reservations.c.product_id == products.c.id)
    .correlate(products)
    .scalar_subquery(),
    0,
)


@dataclass(frozen=True)
class CartState:
    """One cart version as a value: the row's shopper-visible columns and its lines in the order added."""

    id: int
    version: int
    status: str
    currency: str
    payment_intent_id: str | None
    pi_amount: int | None
    pi_status: str | None
    lines: tuple = ()
    next_position: int = 1
    notices: tuple = ()

    @property
    def total(self):
        return domain.total(self.lines)

    @property
    def quantities(self):
        return {line.product_id: line.quantity for line in self.lines}

    def view(self):
        """The cart as the API and the `cart` push show it."""
        payment = None
        if self.payment_intent_id:
            payment = {"payment_intent_id": self.payment_intent_id, "amount": self.pi_amount, "status": self.pi_status}
        return {
            "id": self.id,
            "version": self.version,
            "status": self.status,
            "currency": self.currency,
            "items": [line.as_dict() for line in self.lines],
            "total": self.total,
            "payment": payment,
            "notices": list(self.notices),
        }


# Built once: a statement object keeps its cache key, so running it again skips SQLAlchemy's compile step.
# A line's price is the line's own (the price of its version), never the product's current one.
_CARTS_AND_LINES = carts.outerjoin(lines_table, lines_table.c.cart_id == carts.c.id).outerjoin(
    products, products.c.id == lines_table.c.product_id
)
_READ_COLUMNS = (
    *CART_COLUMNS,
    products.c.id.label("product_id"),
    products.c.name,
    lines_table.c.unit_amount,
    lines_table.c.quantity,
    lines_table.c.position,
    products.c.active,
    cast(null(), Integer).label("available"),
)
_READ = select(*_READ_COLUMNS).select_from(_CARTS_AND_LINES).where(carts.c.id == bindparam("cart_id"))
# The shopper's read (GET /api/cart) also names the cart's latest order, in the same statement (an indexed
# look-up on orders.cart_id): a tab opened after a payment links to it. Changes read without it.
_LAST_ORDER_ID = select(func.max(orders.c.id)).where(orders.c.cart_id == carts.c.id).correlate(carts).scalar_subquery()
_READ_WITH_LAST_ORDER = (
    select(*_READ_COLUMNS, orders.c.id.label("last_order_id"), orders.c.status.label("last_order_status"))
    .select_from(_CARTS_AND_LINES.outerjoin(orders, orders.c.id == _LAST_ORDER_ID))
    .where(carts.c.id == bindparam("cart_id"))
)
_LOCK = select(carts.c.id).where(carts.c.id == bindparam("cart_id")).with_for_update()
# The same, plus a row for the product a change names (its cart columns null), still one statement.
_READ_WITH_PRODUCT = union_all(
    _READ,
    select(
        *(null() for _ in CART_COLUMNS),
        products.c.id,
        products.c.name,
        products.c.unit_amount,
        null(),
        null(),
        products.c.active,
        AVAILABLE,
    ).where(products.c.id == bindparam("product_id")),
)
_DELETE_LINES = delete(lines_table).where(
    lines_table.c.cart_id == bindparam("cart_id"),
    lines_table.c.product_id.in_(bindparam("product_ids", expanding=True)),
)
_SET_QUANTITY = (
    update(lines_table)
    .where(lines_table.c.cart_id == bindparam("line_cart"), lines_table.c.product_id == bindparam("line_product"))
    .values(quantity=bindparam("new_quantity"))
)
_ADD_LINES = insert(lines_table)
_BUMP = (
    update(carts)
    .where(carts.c.id == bindparam("cart_id"))
    .values(
        version=bindparam("new_version"),
        total=bindparam("new_total"),
        notices=bindparam("notices"),
        changed_at=bindparam("changed_at"),
    )
)
_SET_PRICE = (
    update(lines_table)
    .where(lines_table.c.cart_id == bindparam("line_cart"), lines_table.c.product_id == bindparam("line_product"))
    .values(unit_amount=bindparam("new_unit_amount"))
)
# A version the store made (a new price, a withdrawal) is not the shopper's doing: changed_at stays, so
# repricing never keeps an abandoned cart alive.
_BUMP_BY_STORE = (
    update(carts)
    .where(carts.c.id == bindparam("cart_id"))
    .values(version=bindparam("new_version"), total=bindparam("new_total"), notices=bindparam("notices"))
)
_BUMP_IF_CURRENT = _BUMP.where(carts.c.version == bindparam("old_version"), carts.c.status == "open")
_ADD_SNAPSHOT = insert(snapshots)

# PostgreSQL: a whole change as one statement, which commits by itself. The version guard makes it
# optimistic: if another change (or a freeze) came first, `bumped` is empty and nothing is written.
# A change adding a line also guards the price it read: the share lock makes a merchant's price change
# either wait for this statement (and then find the new line) or come first (and fail this guard). The
# cart row is locked before the product, the order the handshake and fulfilment take them in.
_CHANGE_IN_ONE_STATEMENT = text("""
WITH priced AS (
    SELECT p.id FROM carts c, products p
    WHERE c.id = :cart_id AND p.id = CAST(:guard_product AS integer) AND p.unit_amount = :guard_price AND p.active
    FOR NO KEY UPDATE OF c FOR SHARE OF p
), bumped AS (
    UPDATE carts SET version = :new_version, total = :new_total, notices = NULL, changed_at = :changed_at
    WHERE id = :cart_id AND version = :old_version AND status = 'open'
      AND (CAST(:guard_product AS integer) IS NULL OR EXISTS (SELECT 1 FROM priced))
    RETURNING id
), removed AS (
    DELETE FROM cart_lines
    WHERE cart_id IN (SELECT id FROM bumped) AND product_id = ANY(CAST(:removed AS integer[]))
), written AS (
    INSERT INTO cart_lines (cart_id, product_id, quantity, unit_amount, position)
    SELECT bumped.id, w.product_id, w.quantity, w.unit_amount, w.position
    FROM bumped, unnest(CAST(:product_ids AS integer[]), CAST(:quantities AS integer[]),
                        CAST(:unit_amounts AS integer[]), CAST(:positions AS integer[]))
                 AS w(product_id, quantity, unit_amount, position)
    ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = EXCLUDED.quantity
), snapshot AS (
    INSERT INTO cart_snapshots (cart_id, version, items, total, currency)
    SELECT id, :new_version, CAST(:items AS json), :new_total, :currency FROM bumped
)
SELECT count(*) FROM bumped
""")


def read(conn, cart_id, product_id=None):
    """The cart as committed, in one statement (one snapshot of row and lines, no lock), and the product
    named by `product_id` as a Line of quantity 0 (None if there is no such product)."""
    if product_id is None:
        rows = conn.execute(_READ, {"cart_id": cart_id}).all()
    else:
        rows = conn.execute(_READ_WITH_PRODUCT, {"cart_id": cart_id, "product_id": product_id}).all()
    cart_rows = [row for row in rows if row.id is not None]
    if not cart_rows:
        raise NotFound("This cart does not exist.", code="cart_not_found")
    product = next(
        (domain.Line(r.product_id, r.name, r.unit_amount, 0, r.available, r.active) for r in rows if r.id is None), None
    )
    lines = sorted((row for row in cart_rows if row.quantity is not None), key=lambda row: row.position)
    return state_from_rows(cart_rows[0], lines), product


def read_with_last_order(conn, cart_id):
    """The cart as `read` gives it, and its latest order as {"id", "status"} (None before its first payment),
    in one statement."""
    rows = conn.execute(_READ_WITH_LAST_ORDER, {"cart_id": cart_id}).all()
    if not rows:
        raise NotFound("This cart does not exist.", code="cart_not_found")
    lines = sorted((row for row in rows if row.quantity is not None), key=lambda row: row.position)
    first = rows[0]
    last_order = {"id": first.last_order_id, "status": first.last_order_status} if first.last_order_id else None
    return state_from_rows(first, lines), last_order


def lock(conn, cart_id):
    """Hold the cart's row lock until the caller's transaction ends (SQLite's write transaction already
    serialises); a read after it sees the latest committed version, and a write from that read lands."""
    conn.execute(_LOCK, {"cart_id": cart_id})


def state_from_rows(row, line_rows):
    """A CartState from a row with the cart's columns and its line rows in position order."""
    lines = tuple(domain.Line(r.product_id, r.name, r.unit_amount, r.quantity) for r in line_rows)
    next_position = max((r.position for r in line_rows), default=0) + 1
    return CartState(
        row.id,
        row.version,
        row.status,
        row.currency,
        row.payment_intent_id,
        row.pi_amount,
        row.pi_status,
        lines,
        next_position,
        tuple(row.notices or ()),
    )


@dataclass(frozen=True)
class _Edit:
    """What turning `state` into `new` writes: lines removed, lines set (existing or new), the new state."""

    new: CartState
    removed: list
    changed: list
    added: list


def _edit(state, quantities, products_by_id):
    before = state.quantities
    kept = [
        replace(line, quantity=quantities[line.product_id]) for line in state.lines if line.product_id in quantities
    ]
    added = [replace(products_by_id[pid], quantity=q) for pid, q in quantities.items() if pid not in before]
    new = replace(
        state,
        version=state.version + 1,
        lines=tuple(kept + added),
        next_position=state.next_position + len(added),
        notices=(),
    )
    return _Edit(
        new=new,
        removed=[pid for pid in before if pid not in quantities],
        changed=[(pid, q) for pid, q in quantities.items() if pid in before and before[pid] != q],
        added=[
            (line.product_id, line.quantity, line.unit_amount, state.next_position + i) for i, line in enumerate(added)
        ],
    )


def write_change(conn, state, quantities, products_by_id):
    """Write a change to the cart read as `state`, only if it is still that version and open.

    Returns the new state, or None when the cart moved on (the caller reads it again). On PostgreSQL
    this is one statement (in autocommit on the optimistic path); elsewhere it runs in the caller's transaction.
    """
    edit = _edit(state, quantities, products_by_id)
    if conn.dialect.name != "postgresql":
        return _write(conn, state, edit, if_current=True)
    # Changed lines keep their price (ON CONFLICT updates the quantity only); the 0s are placeholders.
    set_lines = [(pid, q, 0, 0) for pid, q in edit.changed] + edit.added
    guard = edit.added[0] if edit.added else None
    written = conn.execute(
        _CHANGE_IN_ONE_STATEMENT,
        {
            "cart_id": state.id,
            "old_version": state.version,
            "new_version": edit.new.version,
            "new_total": edit.new.total,
            "changed_at": utcnow(),
            "currency": state.currency,
            "removed": edit.removed,
            "product_ids": [pid for pid, _, _, _ in set_lines],
            "quantities": [q for _, q, _, _ in set_lines],
            "unit_amounts": [price for _, _, price, _ in set_lines],
            "positions": [position for _, _, _, position in set_lines],
            "guard_product": guard[0] if guard else None,
            "guard_price": guard[2] if guard else 0,
            "items": json.dumps([line.as_dict() for line in edit.new.lines]),
        },
    ).scalar()
    return edit.new if written else None


def write_lines(conn, state, quantities, products_by_id=None):
    """Write new quantities, bump the version and record its snapshot, in the caller's transaction, which
    holds the cart's row lock. `products_by_id` names (as domain Lines) any product not already in the cart."""
    return _write(conn, state, _edit(state, quantities, products_by_id or {}), if_current=False)


def _write(conn, state, edit, *, if_current):
    new = edit.new
    bump = {
        "cart_id": state.id,
        "new_version": new.version,
        "new_total": new.total,
        "notices": None,
        "changed_at": utcnow(),
    }
    if if_current:
        if conn.execute(_BUMP_IF_CURRENT, {**bump, "old_version": state.version}).rowcount != 1:
            return None
    else:
        conn.execute(_BUMP, bump)
    if edit.removed:
        conn.execute(_DELETE_LINES, {"cart_id": state.id, "product_ids": edit.removed})
    if edit.changed:
        conn.execute(
            _SET_QUANTITY,
            _one_or_many([{"line_cart": state.id, "line_product": pid, "new_quantity": q} for pid, q in edit.changed]),
        )
    if edit.added:
        conn.execute(
            _ADD_LINES,
            _one_or_many(
                [
                    {"cart_id": state.id, "product_id": pid, "quantity": q, "unit_amount": price, "position": position}
                    for pid, q, price, position in edit.added
                ]
            ),
        )
    _add_snapshot(conn, state.currency, new)
    return new


def write_repriced(conn, state, lines, notices):
    """Write a version whose lines carry new prices (or left), with the notices saying so, in the caller's
    transaction, which holds the cart's row lock."""
    new = replace(state, version=state.version + 1, lines=tuple(lines), notices=tuple(notices))
    conn.execute(
        _BUMP_BY_STORE,
        {"cart_id": state.id, "new_version": new.version, "new_total": new.total, "notices": list(notices)},
    )
    kept = {line.product_id: line for line in lines}
    removed = [line.product_id for line in state.lines if line.product_id not in kept]
    if removed:
        conn.execute(_DELETE_LINES, {"cart_id": state.id, "product_ids": removed})
    changed = [
        (line.product_id, kept[line.product_id].unit_amount)
        for line in state.lines
        if line.product_id in kept and kept[line.product_id].unit_amount != line.unit_amount
    ]
    if changed:
        conn.execute(
            _SET_PRICE,
            _one_or_many(
                [{"line_cart": state.id, "line_product": pid, "new_unit_amount": price} for pid, price in changed]
            ),
        )
    _add_snapshot(conn, state.currency, new)
    return new


def _add_snapshot(conn, currency, new):
    """Record the lines and total of the version just written: what a PaymentIntent's metadata can name."""
    conn.execute(
        _ADD_SNAPSHOT,
        {
            "cart_id": new.id,
            "version": new.version,
            "currency": currency,
            "items": [line.as_dict() for line in new.lines],
            "total": new.total,
        },
    )


def _one_or_many(params):
    """One row's parameters as a plain execute (a change touches one line), several as an executemany."""
    return params[0] if len(params) == 1 else params


_NEXT_ID_POSTGRES = text("SELECT nextval(pg_get_serial_sequence('carts', 'id'))")
_NEXT_ID_COUNTER = (
    update(CartIdCounter.__table__)
    .where(CartIdCounter.__table__.c.id == 1)
    .values(last_id=CartIdCounter.__table__.c.last_id + 1)
    .returning(CartIdCounter.__table__.c.last_id)
)


def reserve_id(conn):
    """A cart id no other cart will ever get, without a cart row: PostgreSQL's sequence for carts.id, or
    (SQLite, whose row ids are only max + 1) the one-row counter. Every cart id comes from here."""
    if conn.dialect.name == "postgresql":
        return conn.execute(_NEXT_ID_POSTGRES).scalar_one()
    return conn.execute(_NEXT_ID_COUNTER).scalar_one()


def create(conn, cart_id, currency):
    """Write the reserved cart `cart_id`, empty at version 1, with its first snapshot; an IntegrityError
    if it already exists."""
    conn.execute(insert(carts), {"id": cart_id, "version": 1, "total": 0, "status": "open", "currency": currency})
    conn.execute(_ADD_SNAPSHOT, {"cart_id": cart_id, "version": 1, "items": [], "total": 0, "currency": currency})


_UNCHANGED = (
    select(carts.c.id)
    .where(
        carts.c.id == bindparam("cart_id"),
        carts.c.version == 1,
        carts.c.status == "open",
        carts.c.payment_intent_id.is_(None),
    )
    .with_for_update()
)


def delete_if_unchanged(conn, cart_id):
    """Remove a cart still as `create` wrote it (version 1, open, no PaymentIntent), under its row lock."""
    if conn.execute(_UNCHANGED, {"cart_id": cart_id}).scalar_one_or_none() is not None:
        delete_carts(conn, [cart_id])


def delete_carts(conn, cart_ids):
    """Remove carts with their lines and snapshots (the caller has checked that nothing refers to them)."""
    if not cart_ids:
        return
    conn.execute(delete(lines_table).where(lines_table.c.cart_id.in_(cart_ids)))
    conn.execute(delete(snapshots).where(snapshots.c.cart_id.in_(cart_ids)))
    conn.execute(delete(carts).where(carts.c.id.in_(cart_ids)))
    # Payment attempts outlive their cart (no foreign key); one still pending is never asked again.
    conn.execute(
        update(attempts)
        .where(attempts.c.cart_id.in_(cart_ids), attempts.c.status == "pending")
        .values(status="abandoned")
    )
