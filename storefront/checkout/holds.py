"""What one client may hold at once: frozen carts and reserved units, per session and per client address.

A session is its signed cookie, and a client that drops its cookie starts a new one: the address is what
bounds one client, and the session's tighter limit leaves room for the shoppers who share an address.
The freeze being made counts: the handshake stamps and reserves it first, in the same transaction, and a
refusal rolls the whole handshake back (nothing frozen, nothing reserved).
"""

import logging
from dataclasses import dataclass

from sqlalchemy import func, select, text

from ..errors import Conflict
from ..models import Cart, Order, StockReservation

log = logging.getLogger(__name__)
carts, orders, reservations = Cart.__table__, Order.__table__, StockReservation.__table__


@dataclass(frozen=True)
class Limits:
    """At most this many frozen carts and reserved units per session and per address (0: no limit)."""

    session_freezes: int = 2
    session_units: int = 10
    address_freezes: int = 3
    address_units: int = 20


@dataclass(frozen=True)
class Client:
    """Who asks for the handshake: the client's address and the session's own id (either may be unknown)."""

    address: str | None
    session: str | None

    def stamp(self):
        """The cart columns that say which client a freeze was made for."""
        return {"frozen_from": self.address, "frozen_session": self.session}


class HoldLimitReached(Conflict):
    code = "reservation_limit"


def check(conn, cart_id, client, limits):
    """Raise HoldLimitReached when the client's frozen carts (this one included, already stamped and
    reserved in the caller's transaction) hold more than `limits` allow."""
    if client is None or limits is None:
        return
    scopes = (
        ("session", carts.c.frozen_session, client.session, limits.session_freezes, limits.session_units),
        ("address", carts.c.frozen_from, client.address, limits.address_freezes, limits.address_units),
    )
    for scope, column, key, max_freezes, max_units in scopes:
        if key is None or not (max_freezes or max_units):
            continue
        _serialise(conn, scope, key)
        freezes, units = _holding(conn, column, key)
        if max_freezes and freezes > max_freezes:
            _refuse(cart_id, client, scope, "freezes", freezes, max_freezes)
        if max_units and units > max_units:
            _refuse(cart_id, client, scope, "units", units, max_units)


def _serialise(conn, scope, key):
    """Two handshakes of one client at once count one after the other. PostgreSQL: a lock on the client's
    key until commit (taken in scope order, after the cart's and the products' rows, and held while only
    counting, so no cycle); SQLite's write lock already serialises every handshake."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"hold:{scope}:{key}"})


def _holding(conn, column, key):
    """(frozen carts, units they reserve) of one session or address."""
    freezes = conn.scalar(select(func.count()).where(carts.c.status == "frozen", column == key))
    units = conn.scalar(
        select(func.coalesce(func.sum(reservations.c.quantity), 0))
        .select_from(reservations.join(orders, orders.c.id == reservations.c.order_id))
        .join(carts, carts.c.id == orders.c.cart_id)
        .where(carts.c.status == "frozen", column == key)
    )
    return freezes, int(units)


_MESSAGES = {
    "freezes": "You already have {held_before} checkout{s} waiting for payment. Pay for or cancel {it} "
    "before starting another, or try again in a few minutes.",
    "units": "Checkouts waiting for payment can hold at most {limit} items at once (this one would make "
    "{count}). Pay for or cancel the others, or take fewer items.",
}


def _refuse(cart_id, client, scope, kind, count, limit):
    log.warning(
        "cart %s: handshake refused by the %s reservation limit (address %s, session %s): %s %s, limit %s",
        cart_id,
        scope,
        client.address,
        client.session,
        count,
        kind,
        limit,
    )
    held_before = count - 1
    message = _MESSAGES[kind].format(
        held_before=held_before,
        s="" if held_before == 1 else "s",
        it="it" if held_before == 1 else "one",
        limit=limit,
        count=count,
    )
    raise HoldLimitReached(message, extra={"limit": {"scope": scope, "kind": kind, "max": limit}})
