"""The worker's heartbeat: one row per worker (host:pid), its time renewed as the worker's loop turns.

/readyz and /metrics read the newest row's age: a worker that died, hangs or cannot reach the database stops
renewing its row. A beat is one UPDATE of one row (an INSERT the first time), written from the worker's loop
and never on a shopper's path.
"""

import os
import socket
import time
from datetime import timedelta

from sqlalchemy import delete, func, insert, select, update

from ..models import WorkerHeartbeat

heartbeats = WorkerHeartbeat.__table__
# The loop turns every WORKER_POLL_SECONDS (0.2 s): a write per turn would be five commits a second per worker
# (on SQLite, five takings of the store's write lock) for a signal read in tens of seconds.
BEAT_EVERY_SECONDS = 5
# Rows of workers gone this long (restarts leave one each) are removed, by a beat at most hourly per worker.
FORGET_AFTER = timedelta(days=1)
PRUNE_EVERY_SECONDS = 3600


def worker_id():
    """This worker's key: its host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


def write(conn, key, now):
    """Renew (or first write) the worker's row."""
    renewed = conn.execute(update(heartbeats).where(heartbeats.c.worker_id == key).values(beat_at=now))
    if renewed.rowcount == 0:
        conn.execute(insert(heartbeats).values(worker_id=key, beat_at=now))


def newest(conn):
    """When any worker last beat, or None."""
    return conn.execute(select(func.max(heartbeats.c.beat_at))).scalar()


def age_seconds(conn, now):
    """Seconds since any worker last beat, or None when none ever did."""
    last = newest(conn)
    return None if last is None else max((now - last).total_seconds(), 0.0)


class Heartbeat:
    """Beats for this process's worker at most every BEAT_EVERY_SECONDS."""

    def __init__(self, every_seconds=BEAT_EVERY_SECONDS, clock=time.monotonic):
        self.every_seconds, self._clock = every_seconds, clock
        self._last = self._pruned = None

    def beat(self, shop):
        """Write the heartbeat if it is due (one statement); now and then forget long-gone workers."""
        now = self._clock()
        if self._last is not None and now - self._last < self.every_seconds:
            return
        prune = self._pruned is None or now - self._pruned >= PRUNE_EVERY_SECONDS
        with shop.uow(statements=True) as uow:
            write(uow.conn, worker_id(), shop.now())
            if prune:
                uow.conn.execute(delete(heartbeats).where(heartbeats.c.beat_at < shop.now() - FORGET_AFTER))
            uow.commit()
        self._last = now
        if prune:
            self._pruned = now
