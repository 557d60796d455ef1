"""The store's identity: a UUID made once per database, in every idempotency key and PaymentIntent."""

import uuid

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from .models import StoreIdentity

identities = StoreIdentity.__table__
_READ = select(identities.c.store_id).where(identities.c.id == 1)


def store_id(engine):
    """This database's store id, created on first use (two processes starting together agree on one)."""
    with engine.connect() as conn:
        found = conn.scalar(_READ)
        if found:
            return found
        try:
            conn.execute(insert(identities).values(id=1, store_id=uuid.uuid4().hex))
            conn.commit()
        except IntegrityError:  # another process made it first: theirs stands
            conn.rollback()
        return conn.scalar(_READ)
