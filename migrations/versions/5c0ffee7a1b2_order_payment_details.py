"""orders.payment_method and orders.failure_reason: what the order page tells the shopper

Revision ID: 5c0ffee7a1b2
Revises: c4d81f0e2a17
Create Date: 2026-12-01 23:45:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '5c0ffee7a1b2'
down_revision = 'c4d81f0e2a17'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('payment_method', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('failure_reason', sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('failure_reason')
        batch.drop_column('payment_method')
