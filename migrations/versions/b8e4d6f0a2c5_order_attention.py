"""An order's attention: a dispute or a failed refund the merchant must see (the admin's queue shows it first)

Revision ID: b8e4d6f0a2c5
Revises: a7d3c5e9f1b4
Create Date: 2026-12-08 03:20:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b8e4d6f0a2c5'
down_revision = 'a7d3c5e9f1b4'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('orders', sa.Column('attention', sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('attention')
