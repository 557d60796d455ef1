"""The fault-injection soak (issue 5): many shoppers with several tabs, Stripe misbehaving in every way it can.

Small in the normal run; full size on demand:

    SOAK_SHOPPERS=1000 SOAK_ACTIONS=10 .venv/bin/python -m pytest tests/soak -s

Environment: SOAK_SHOPPERS (default 40), SOAK_ACTIONS per shopper on average (default 10), SOAK_WORKERS
(concurrent shoppers, default 24), SOAK_SEED (default 1), SOAK_DATABASE_URL (default a SQLite file).
"""

import os

import pytest

from tests.soak.harness import Soak

SHOPPERS = int(os.environ.get("SOAK_SHOPPERS", 40))
ACTIONS = int(os.environ.get("SOAK_ACTIONS", 10))


@pytest.mark.soak
@pytest.mark.timeout(max(300, SHOPPERS * 3))
def test_shoppers_under_stripe_faults_keep_every_invariant(tmp_path):
    soak = Soak(
        tmp_path,
        shoppers=SHOPPERS,
        actions=ACTIONS,
        workers=int(os.environ.get("SOAK_WORKERS", 24)),
        seed=int(os.environ.get("SOAK_SEED", 1)),
        database_url=os.environ.get("SOAK_DATABASE_URL"),
    )
    summary, violations = soak.run()
    print("\n" + summary)
    assert not violations, "\n".join([summary, *violations[:40]])
