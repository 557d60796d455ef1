"""One explicit transaction per use case: `with shop.uow() as uow: ... uow.commit()`.

A use case (a route's service call, one job of the worker) opens a unit of work, reads and writes
through `uow.conn` with Core statements, and calls `uow.commit()` once. Services never commit, roll
back or expire anything themselves: leaving the `with` block without a commit rolls back, so an
error half-way writes nothing. What must happen only once the transaction is durable (a push to the
cart's room, waking the worker) is handed to `uow.after_commit` and runs after the commit, never
while a row lock is held; a rolled-back unit of work drops it.

A use case written as self-contained statements (the cart change: one consistent read, one
version-guarded write) asks for `statements=True`: on PostgreSQL each statement is then its own
transaction, in autocommit, which saves the BEGIN and COMMIT round trips; SQLite runs the same
statements in its write transaction (BEGIN IMMEDIATE), which serialises them the same way.
"""

from sqlalchemy.orm import Session, scoped_session


class UnitOfWorkInUse(RuntimeError):
    """A unit of work was opened while another one (or a stray transaction) is open on the same session."""


class UnitOfWork:
    """One transaction on the request's (or job's) database session, committed once or rolled back."""

    def __init__(self, session: Session | scoped_session, *, statements: bool = False):
        # Flask-SQLAlchemy's `db.session` is a scoped_session: the unit of work is on this context's session.
        self._session = session() if isinstance(session, scoped_session) else session
        self._statements = statements
        self._after_commit = []
        self.conn = None

    def __enter__(self):
        if self._session.in_transaction():
            # Nesting would end the outer use case's transaction; a helper inside a use case takes `uow`.
            raise UnitOfWorkInUse("a unit of work is already open on this session")
        options = {}
        if self._statements and self._session.get_bind().dialect.name == "postgresql":
            options = {"isolation_level": "AUTOCOMMIT"}
        try:
            self.conn = self._session.connection(execution_options=options)
        except BaseException:
            # The database refused the connection: `__exit__` will not run, so end what the session began,
            # or every later unit of work on this session would meet a stray transaction (UnitOfWorkInUse).
            self._session.rollback()
            raise
        return self

    def commit(self):
        """Make the use case's writes durable, then run what waited for it."""
        self._session.commit()
        self.conn = None
        waiting, self._after_commit = self._after_commit, []
        for action in waiting:
            action()

    def after_commit(self, action):
        """Run `action()` once this unit of work has committed (a push, a wake-up); dropped on rollback."""
        self._after_commit.append(action)

    def __exit__(self, *_exc):
        self._after_commit = []
        if self.conn is not None or self._session.in_transaction():
            self._session.rollback()
        self.conn = None
        return False
