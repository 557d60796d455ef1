"""The PaymentIntent's client secret is no longer stored: Stripe says not to; it is read from Stripe when a page needs it

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
    # Not batch mode: SQLite (3.35+) drops a column in place, and recreating `carts` would lose the
    # condition of its partial index ix_carts_lagging.
    op.drop_column("carts", "client_secret")


def downgrade():
    # The secrets are not stored back: checkouts started before the downgrade answer none until a new one starts.
    op.add_column("carts", sa.Column("client_secret", sa.String(length=255), nullable=True))
