"""job_turns: one row per periodic job, so reconciliation runs once per store

Revision ID: c4d1e7a2b9f3
Revises: 7b3e1c9a4f20
Create Date: 2026-12-01 23:55:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c4d1e7a2b9f3"
down_revision = "7b3e1c9a4f20"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "job_turns",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade():
    op.drop_table("job_turns")
