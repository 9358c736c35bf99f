"""inbound messages: what the person sent, kept before any workflow is told

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inboundmessage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("transition_id", sa.String(length=80), nullable=True),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("body", sa.String(length=1600), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heard_by", sa.String(length=120), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"],
                                name=op.f("fk_inboundmessage_person_id_person")),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name=op.f("fk_inboundmessage_task_id_task")),
        sa.ForeignKeyConstraint(["transition_id"], ["transition.id"],
                                name=op.f("fk_inboundmessage_transition_id_transition")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inboundmessage")),
        sa.UniqueConstraint("key", name=op.f("uq_inboundmessage_key")),
    )
    op.create_index("ix_inboundmessage_person_id", "inboundmessage", ["person_id"])
    op.create_index("ix_inboundmessage_transition_received", "inboundmessage",
                    ["transition_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_inboundmessage_transition_received", table_name="inboundmessage")
    op.drop_index("ix_inboundmessage_person_id", table_name="inboundmessage")
    op.drop_table("inboundmessage")
