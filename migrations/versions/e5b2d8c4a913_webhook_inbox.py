"""webhook_events become an inbox: what the handler needs, and when the event is next due

Revision ID: e5b2d8c4a913
Revises: c4a7e2d91b35
Create Date: 2026-12-02 04:45:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e5b2d8c4a913'
down_revision = 'c4a7e2d91b35'
branch_labels = None
depends_on = None


def upgrade():
    # An event recorded but never processed holds none of what the inbox needs to process it; forgetting it
    # makes it unseen, so Stripe's redelivery (its delivery was answered 5xx) or reconciliation records it
    # again, whole.
    op.execute("DELETE FROM webhook_events WHERE processed_at IS NULL")
    with op.batch_alter_table('webhook_events') as batch:
        batch.add_column(sa.Column('object_id', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('created_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('due_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('claimed_until', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
    op.create_index(op.f('ix_webhook_events_due_at'), 'webhook_events', ['due_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_webhook_events_due_at'), table_name='webhook_events')
    with op.batch_alter_table('webhook_events') as batch:
        batch.drop_column('attempts')
        batch.drop_column('claimed_until')
        batch.drop_column('due_at')
        batch.drop_column('created_at')
        batch.drop_column('object_id')
