"""The store's identity: a UUID made once per database, in every idempotency key and PaymentIntent."""

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import StoreIdentity


def store_id(engine):
    """This database's store id, created on first use (two processes starting together agree on one)."""
    with Session(engine) as session:
        found = session.scalar(select(StoreIdentity.store_id).where(StoreIdentity.id == 1))
        if found:
            return found
        session.add(StoreIdentity(id=1, store_id=uuid.uuid4().hex))
        try:
            session.commit()
        except IntegrityError:  # another process made it first: theirs stands
            session.rollback()
        return session.scalar(select(StoreIdentity.store_id).where(StoreIdentity.id == 1))
