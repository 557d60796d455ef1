"""The PaymentIntent's client secret is no longer stored: Stripe says not to; it is read from Stripe when a page needs it

The stored secrets are erased here; the column itself is dropped by a later release (removed in two steps, so
the previous release's processes, which still read it while this migration runs, keep working).

Revision ID: a7d3c5e9f1b4
Revises: f3a9c2d71e08
Create Date: 2026-12-08 03:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a7d3c5e9f1b4"
down_revision = "f3a9c2d71e08"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(sa.text("UPDATE carts SET client_secret = NULL WHERE client_secret IS NOT NULL"))


def downgrade():
    # The secrets are not stored back: checkouts started before the downgrade answer none until a new one starts.
    pass
