"""No event dropped: a webhook event's last error, and when reconciliation last checked a payment attempt

Revision ID: f3a9c1e7b2d4
Revises: e5b2a9c4d713
Create Date: 2026-12-08 02:15:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f3a9c1e7b2d4'
down_revision = 'e5b2a9c4d713'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_events') as batch:
        batch.add_column(sa.Column('last_error', sa.String(length=500), nullable=True))
    with op.batch_alter_table('payment_attempts') as batch:
        batch.add_column(sa.Column('checked_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('payment_attempts') as batch:
        batch.drop_column('checked_at')
    with op.batch_alter_table('webhook_events') as batch:
        batch.drop_column('last_error')
