"""handoff measures: each handoff's outcome clocks, kept as its records change

The table is derived and starts empty: the outcome report fills in any handoff that has no row
yet before it counts, and `handrail report refresh-measures` rebuilds every row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "handoffmeasure",
        sa.Column("transition_id", sa.String(length=80), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        _when("event_time", nullable=False),
        sa.Column("discharged", sa.Boolean(), nullable=False),
        sa.Column("follow_up_setting", sa.String(length=20), nullable=True),
        sa.Column("follow_up_excluded", sa.String(length=40), nullable=True),
        sa.Column("follow_up_7d_met", sa.Boolean(), nullable=False),
        _when("follow_up_7d_closes_at"),
        sa.Column("follow_up_30d_met", sa.Boolean(), nullable=False),
        _when("follow_up_30d_closes_at"),
        sa.Column("first_contact_hours", sa.Float(), nullable=True),
        sa.Column("within_72h_met", sa.Boolean(), nullable=False),
        _when("within_72h_closes_at", nullable=False),
        sa.Column("attended", sa.Integer(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("reconciled_by_role", sa.String(length=40), nullable=True),
        sa.Column("reconciled_after_seconds", sa.Float(), nullable=True),
        sa.Column("mrp_dates_met", sa.Boolean(), nullable=False),
        _when("mrp_closes_at", nullable=False),
        sa.Column("repeat_30d_met", sa.Boolean(), nullable=False),
        _when("repeat_30d_closes_at", nullable=False),
        sa.Column("repeat_90d_met", sa.Boolean(), nullable=False),
        _when("repeat_90d_closes_at", nullable=False),
        sa.PrimaryKeyConstraint("transition_id", name=op.f("pk_handoffmeasure")),
    )
    op.create_index("ix_handoffmeasure_team_event", "handoffmeasure", ["team_id", "event_time"])
    op.create_index("ix_handoffmeasure_person", "handoffmeasure", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_handoffmeasure_person", table_name="handoffmeasure")
    op.drop_index("ix_handoffmeasure_team_event", table_name="handoffmeasure")
    op.drop_table("handoffmeasure")
