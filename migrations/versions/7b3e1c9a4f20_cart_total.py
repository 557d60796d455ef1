"""carts.total: the current version's total on the cart row

Revision ID: 7b3e1c9a4f20
Revises: d2612c06e85c
Create Date: 2026-11-26 11:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7b3e1c9a4f20'
down_revision = 'd2612c06e85c'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('carts', sa.Column('total', sa.Integer(), server_default='0', nullable=False))
    # Existing carts take their current snapshot's total.
    op.execute(
        "UPDATE carts SET total = COALESCE((SELECT s.total FROM cart_snapshots s "
        "WHERE s.cart_id = carts.id AND s.version = carts.version), 0)"
    )


def downgrade():
    with op.batch_alter_table('carts') as batch:
        batch.drop_column('total')
