"""The merchant's side: line prices per cart version, stock and reservations, notices, order history

Revision ID: c4d81f0e2a17
Revises: c4e7a1d09b3f
Create Date: 2026-12-01 23:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4d81f0e2a17'
down_revision = 'c4e7a1d09b3f'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('products') as batch:
        batch.add_column(sa.Column('stock', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column('carts', sa.Column('notices', sa.JSON(), nullable=True))
    op.add_column('cart_lines', sa.Column('unit_amount', sa.Integer(), nullable=True))
    # Existing lines take the price they were being shown at: the product's.
    op.execute("UPDATE cart_lines SET unit_amount = (SELECT p.unit_amount FROM products p "
               "WHERE p.id = cart_lines.product_id)")
    with op.batch_alter_table('cart_lines') as batch:
        batch.alter_column('unit_amount', existing_type=sa.Integer(), nullable=False)
    op.create_table('stock_reservations',
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], ),
    sa.PrimaryKeyConstraint('order_id', 'product_id')
    )
    op.create_index(op.f('ix_stock_reservations_product_id'), 'stock_reservations', ['product_id'], unique=False)
    op.create_table('order_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cart_id', sa.Integer(), nullable=False),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_order_history_cart_id'), 'order_history', ['cart_id'], unique=False)
    op.create_index(op.f('ix_order_history_order_id'), 'order_history', ['order_id'], unique=False)
    op.create_index(op.f('ix_order_history_payment_intent_id'), 'order_history', ['payment_intent_id'],
                    unique=False)


def downgrade():
    op.drop_table('order_history')
    op.drop_table('stock_reservations')
    with op.batch_alter_table('cart_lines') as batch:
        batch.drop_column('unit_amount')
    with op.batch_alter_table('carts') as batch:
        batch.drop_column('notices')
    with op.batch_alter_table('products') as batch:
        batch.drop_column('active')
        batch.drop_column('stock')
