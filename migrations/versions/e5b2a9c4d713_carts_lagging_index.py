"""A partial index of the carts whose PaymentIntent lags: what the worker polls for

Revision ID: e5b2a9c4d713
Revises: e5b2d8c4a913
Create Date: 2026-12-02 05:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e5b2a9c4d713'
down_revision = 'e5b2d8c4a913'
branch_labels = None
depends_on = None

# payments.sync.LAGGING: the index holds only the carts a sync must still update, so the worker's poll
# reads an (almost always empty) index instead of every cart, and a change that leaves the PaymentIntent
# current adds no entry.
LAGGING = sa.text(
    "payment_intent_id IS NOT NULL"
    " AND pi_status IN ('requires_action', 'requires_confirmation', 'requires_payment_method')"
    " AND total > 0"
    " AND (pi_version IS NULL OR pi_version != version OR pi_amount IS NULL OR pi_amount != total)"
)


def upgrade():
    op.create_index('ix_carts_lagging', 'carts', ['id'], postgresql_where=LAGGING, sqlite_where=LAGGING)


def downgrade():
    op.drop_index('ix_carts_lagging', table_name='carts')
