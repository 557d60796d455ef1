"""Which client a freeze was made for: the address and session the reservation limits count

Revision ID: f3a8c1d5e7b2
Revises: f3a9c1e7b2d4
Create Date: 2026-12-08 02:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f3a8c1d5e7b2'
down_revision = 'f3a9c1e7b2d4'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('carts', sa.Column('frozen_from', sa.String(length=64), nullable=True))
    op.add_column('carts', sa.Column('frozen_session', sa.String(length=32), nullable=True))
    op.create_index(op.f('ix_carts_frozen_from'), 'carts', ['frozen_from'], unique=False)
    op.create_index(op.f('ix_carts_frozen_session'), 'carts', ['frozen_session'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_carts_frozen_session'), table_name='carts')
    op.drop_index(op.f('ix_carts_frozen_from'), table_name='carts')
    with op.batch_alter_table('carts') as batch:
        batch.drop_column('frozen_session')
        batch.drop_column('frozen_from')
