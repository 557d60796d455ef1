"""The unit of work when the database refuses the connection: the session is left clean for the next one."""

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bench.stack import free_port
from storefront.unit_of_work import UnitOfWork


def test_a_refused_connection_leaves_no_stray_transaction_behind():
    # Nothing listens on the port: PostgreSQL is down, as when the worker's turn meets a restart.
    engine = create_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test", connect_args={"connect_timeout": 2}
    )
    session = Session(engine)
    for _ in range(2):  # the second try meets the same refusal, not UnitOfWorkInUse
        with pytest.raises(OperationalError), UnitOfWork(session):
            pass
        assert not session.in_transaction()
    engine.dispose()
