"""store_identity and payment_attempts: idempotency unique per store and per attempt

Revision ID: c4e7a1d09b3f
Revises: c4d1e7a2b9f3
Create Date: 2026-12-01 23:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c4e7a1d09b3f'
down_revision = 'c4d1e7a2b9f3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'store_identity',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('store_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('store_id'),
    )
    op.create_table(
        'payment_attempts',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('cart_id', sa.Integer(), nullable=False),
        sa.Column('cart_version', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('payment_intent_id'),
    )
    op.create_index('ix_payment_attempts_cart_id', 'payment_attempts', ['cart_id'])


def downgrade():
    op.drop_index('ix_payment_attempts_cart_id', table_name='payment_attempts')
    op.drop_table('payment_attempts')
    op.drop_table('store_identity')
