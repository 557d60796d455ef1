"""carts.changed_at (what abandoned carts are measured from) and the SQLite cart id counter

Revision ID: c4a7e2d91b35
Revises: 5c0ffee7a1b2
Create Date: 2026-12-01 23:50:00

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c4a7e2d91b35'
down_revision = '5c0ffee7a1b2'
branch_labels = None
depends_on = None


def upgrade():
    # A constant default lets SQLite add a NOT NULL column; existing carts then count as changed at the
    # upgrade (their last change is unknown: counting from creation would remove carts changed yesterday),
    # and the default goes again: the storefront always writes the column itself.
    op.add_column('carts', sa.Column('changed_at', sa.DateTime(), nullable=False,
                                     server_default='1970-01-01 00:00:00'))
    op.get_bind().execute(sa.text("UPDATE carts SET changed_at = :now"),
                          {"now": datetime.now(UTC).replace(tzinfo=None)})
    with op.batch_alter_table('carts') as batch:
        batch.alter_column('changed_at', server_default=None)
    op.create_index(op.f('ix_carts_changed_at'), 'carts', ['changed_at'], unique=False)
    op.create_table('cart_id_counter',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # Ids already used stay used: the counter starts past them.
    op.execute("INSERT INTO cart_id_counter (id, last_id) SELECT 1, COALESCE(MAX(id), 0) FROM carts")


def downgrade():
    op.drop_table('cart_id_counter')
    op.drop_index(op.f('ix_carts_changed_at'), table_name='carts')
    with op.batch_alter_table('carts') as batch:
        batch.drop_column('changed_at')
