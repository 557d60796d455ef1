"""Store-wide turns for periodic jobs: one row per job in the database, so a job runs once per store.

Every process wakes now and then and asks for the job's turn with one conditional UPDATE; the one
whose UPDATE changes the row runs the job, the others go back to sleep. Nothing is held between
turns and nothing is written on the shopper's path. A runner that dies mid-turn holds it only until
`hold_seconds` pass.
"""

from datetime import datetime, timedelta

from sqlalchemy import String, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class JobTurn(db.Model):
    """When a periodic job is next due (or until when its current runner holds it), and who holds it."""

    __tablename__ = "job_turns"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    due_at: Mapped[datetime]
    holder: Mapped[str | None] = mapped_column(String(64))


def take_turn(session, name, holder, *, now, hold_seconds):
    """True if this holder may run the job now; it then holds the turn for up to `hold_seconds`."""
    until = now + timedelta(seconds=hold_seconds)
    try:
        taken = (
            session.execute(
                update(JobTurn).where(JobTurn.name == name, JobTurn.due_at <= now).values(due_at=until, holder=holder)
            ).rowcount
            == 1
        )
        if not taken and session.get(JobTurn, name) is None:
            session.execute(insert(JobTurn).values(name=name, due_at=until, holder=holder))
            taken = True
        session.commit()
    except IntegrityError:  # another process inserted the first row at the same moment: its turn
        session.rollback()
        return False
    return taken


def end_turn(session, name, holder, *, now, every_seconds):
    """The job is next due `every_seconds` from now (if this holder still held the turn)."""
    session.execute(
        update(JobTurn)
        .where(JobTurn.name == name, JobTurn.holder == holder)
        .values(due_at=now + timedelta(seconds=every_seconds), holder=None)
    )
    session.commit()
