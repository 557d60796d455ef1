"""Cart rows read and written in a few Core statements: the path every cart change and every sync takes.

A change is: lock the cart row, read its lines (and the product asked for) in one query, write the one
line that changed, the new version and its snapshot, commit. The ORM's unit of work cost several times
that in CPU and round trips per change; the rarer paths (checkout, fulfilment) still use the models.
"""

from dataclasses import dataclass, replace

from sqlalchemy import bindparam, delete, insert, literal, null, select, union_all, update

from ..errors import NotFound
from ..models import Cart, CartLine, CartSnapshot, Product
from . import domain

carts, lines_table, products, snapshots = (
    Cart.__table__, CartLine.__table__, Product.__table__, CartSnapshot.__table__
)
CART_COLUMNS = (carts.c.id, carts.c.version, carts.c.status, carts.c.currency,
                carts.c.payment_intent_id, carts.c.pi_amount, carts.c.pi_status)


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
            payment = {"payment_intent_id": self.payment_intent_id, "amount": self.pi_amount,
                       "status": self.pi_status}
        return {
            "id": self.id,
            "version": self.version,
            "status": self.status,
            "currency": self.currency,
            "items": [line.as_dict() for line in self.lines],
            "total": self.total,
            "payment": payment,
        }


def state_of(cart):
    """The state of an ORM Cart (for the paths that work with the models)."""
    ordered = sorted(cart.lines, key=lambda line: line.position)
    lines = tuple(domain.Line(line.product_id, line.product.name, line.product.unit_amount, line.quantity)
                  for line in ordered)
    return CartState(cart.id, cart.version, cart.status, cart.currency, cart.payment_intent_id, cart.pi_amount,
                     cart.pi_status, lines, max((line.position for line in ordered), default=0) + 1)


# Built once: a statement object keeps its cache key, so running it again skips SQLAlchemy's compile step.
_READ = (
    select(*CART_COLUMNS, products.c.id.label("product_id"), products.c.name, products.c.unit_amount,
           lines_table.c.quantity, lines_table.c.position)
    .select_from(carts.outerjoin(lines_table, lines_table.c.cart_id == carts.c.id)
                 .outerjoin(products, products.c.id == lines_table.c.product_id))
    .where(carts.c.id == bindparam("cart_id"))
)
_LOCK = select(*CART_COLUMNS).where(carts.c.id == bindparam("cart_id")).with_for_update()
_LINES = (
    select(lines_table.c.product_id, products.c.name, products.c.unit_amount, lines_table.c.quantity,
           lines_table.c.position)
    .join(products, products.c.id == lines_table.c.product_id)
    .where(lines_table.c.cart_id == bindparam("cart_id"))
)
_LINES_AND_PRODUCT = union_all(
    _LINES,
    select(products.c.id, products.c.name, products.c.unit_amount, null(), literal(0))
    .where(products.c.id == bindparam("product_id")),
)
_DELETE_LINES = delete(lines_table).where(lines_table.c.cart_id == bindparam("cart_id"),
                                          lines_table.c.product_id.in_(bindparam("product_ids", expanding=True)))
_SET_QUANTITY = update(lines_table).where(
    lines_table.c.cart_id == bindparam("line_cart"), lines_table.c.product_id == bindparam("line_product")
).values(quantity=bindparam("new_quantity"))
_ADD_LINES = insert(lines_table)
_BUMP = update(carts).where(carts.c.id == bindparam("cart_id")).values(
    version=bindparam("new_version"), total=bindparam("new_total"))
_ADD_SNAPSHOT = insert(snapshots)


def read(session, cart_id):
    """The cart as committed, in one statement (one snapshot of cart row and lines, no lock)."""
    rows = session.connection().execute(_READ, {"cart_id": cart_id}).all()
    if not rows:
        raise NotFound("This cart does not exist.", code="cart_not_found")
    lines = sorted((row for row in rows if row.quantity is not None), key=lambda row: row.position)
    return _state(rows[0], lines)


def lock(session, cart_id, product_id=None):
    """The cart locked until commit, and the product asked for (None if it does not exist).

    Two statements on purpose: the lines are read after the row lock is granted, so they are the
    lines of the version just locked (a join under FOR UPDATE could return lines from before the wait).
    """
    row = session.connection().execute(_LOCK, {"cart_id": cart_id}).one_or_none()
    if row is None:
        raise NotFound("This cart does not exist.", code="cart_not_found")
    return with_lines(session, row, product_id)


def with_lines(session, row, product_id=None):
    """The state of a cart row this transaction has locked (its CART_COLUMNS), with its lines read now."""
    conn = session.connection()
    if product_id is None:
        rows = conn.execute(_LINES, {"cart_id": row.id}).all()
    else:
        rows = conn.execute(_LINES_AND_PRODUCT, {"cart_id": row.id, "product_id": product_id}).all()
    lines = sorted((r for r in rows if r.quantity is not None), key=lambda r: r.position)
    product = next((domain.Line(r.product_id, r.name, r.unit_amount, 0) for r in rows if r.quantity is None), None)
    return _state(row, lines), product


def _state(row, line_rows):
    lines = tuple(domain.Line(r.product_id, r.name, r.unit_amount, r.quantity) for r in line_rows)
    next_position = max((r.position for r in line_rows), default=0) + 1
    return CartState(row.id, row.version, row.status, row.currency, row.payment_intent_id, row.pi_amount,
                     row.pi_status, lines, next_position)


def write_lines(session, state, quantities, products_by_id):
    """Write new quantities, bump the version and record its snapshot in the caller's transaction.

    `products_by_id` names (as domain Lines) any product not already in the cart; the new state is returned.
    """
    conn, before = session.connection(), state.quantities
    removed = [pid for pid in before if pid not in quantities]
    if removed:
        conn.execute(_DELETE_LINES, {"cart_id": state.id, "product_ids": removed})
    changed = [{"line_cart": state.id, "line_product": pid, "new_quantity": q}
               for pid, q in quantities.items() if pid in before and before[pid] != q]
    if changed:
        conn.execute(_SET_QUANTITY, _one_or_many(changed))
    kept = [replace(line, quantity=quantities[line.product_id]) for line in state.lines
            if line.product_id in quantities]
    added = [replace(products_by_id[pid], quantity=q) for pid, q in quantities.items() if pid not in before]
    position = state.next_position
    if added:
        conn.execute(_ADD_LINES, _one_or_many([
            {"cart_id": state.id, "product_id": line.product_id, "quantity": line.quantity, "position": position + i}
            for i, line in enumerate(added)
        ]))
    new = replace(state, version=state.version + 1, lines=tuple(kept + added), next_position=position + len(added))
    conn.execute(_BUMP, {"cart_id": state.id, "new_version": new.version, "new_total": new.total})
    conn.execute(_ADD_SNAPSHOT, {"cart_id": state.id, "version": new.version, "currency": state.currency,
                                 "items": [line.as_dict() for line in new.lines], "total": new.total})
    return new


def _one_or_many(params):
    """One row's parameters as a plain execute (a change touches one line), several as an executemany."""
    return params[0] if len(params) == 1 else params
