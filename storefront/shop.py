"""The collaborators a use case needs, passed in so rules and services can be tested with fakes."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .unit_of_work import UnitOfWork


@dataclass
class Shop:
    # The database session behind `uow()`; services read and write only through a unit of work.
    session: Any
    gateway: Any
    publish: Any
    schedule_sync: Callable[[int], None]
    now: Callable[[], datetime]
    freeze_seconds: float = 900.0
    # A freeze whose payment has not started is released after this long (RESERVATION_SECONDS).
    reservation_seconds: float = 180.0
    # What one client may hold in frozen carts (checkout.holds.Limits); None: no limit.
    hold_limits: Any = None
    currency: str = "usd"

    def uow(self, *, statements=False):
        """A new unit of work on this shop's database session (see unit_of_work)."""
        return UnitOfWork(self.session, statements=statements)
