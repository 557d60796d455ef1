"""Store-wide turns for periodic jobs: one row per job in the database, so a job runs once per store.

Every worker wakes now and then and asks for the job's turn with one conditional UPDATE; the one
whose UPDATE changes the row runs the job, the others go back to sleep. Nothing is held between
turns and nothing is written on the shopper's path. A runner that dies mid-turn holds it only until
`hold_seconds` pass.
"""

from datetime import datetime, timedelta

from sqlalchemy import String, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..unit_of_work import UnitOfWork


class JobTurn(db.Model):
    """When a periodic job is next due (or until when its current runner holds it), and who holds it."""

    __tablename__ = "job_turns"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    due_at: Mapped[datetime]
    holder: Mapped[str | None] = mapped_column(String(64))


turns = JobTurn.__table__


def take_turn(session, name, holder, *, now, hold_seconds):
    """True if this holder may run the job now; it then holds the turn for up to `hold_seconds`."""
    until = now + timedelta(seconds=hold_seconds)
    try:
        with UnitOfWork(session) as uow:
            taken = _take(uow.conn, name, holder, now, until)
            uow.commit()
    except IntegrityError:  # another process inserted the first row at the same moment: its turn
        return False
    return taken


def _take(conn, name, holder, now, until):
    claim = update(turns).where(turns.c.name == name, turns.c.due_at <= now).values(due_at=until, holder=holder)
    if conn.execute(claim).rowcount == 1:
        return True
    if conn.execute(select(exists().where(turns.c.name == name))).scalar():
        return False
    conn.execute(insert(turns).values(name=name, due_at=until, holder=holder))
    return True


def end_turn(session, name, holder, *, now, every_seconds):
    """The job is next due `every_seconds` from now (if this holder still held the turn)."""
    with UnitOfWork(session) as uow:
        uow.conn.execute(
            update(turns)
            .where(turns.c.name == name, turns.c.holder == holder)
            .values(due_at=now + timedelta(seconds=every_seconds), holder=None)
        )
        uow.commit()
