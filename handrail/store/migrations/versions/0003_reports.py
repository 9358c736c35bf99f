"""the reports: indexes for the outcome measures, and the stored weekly assurance report

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assurancereport",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("week_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("week_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("workflow_id", sa.String(length=120), nullable=True),
        sa.Column("policy_version", sa.String(length=100), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("trend", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_assurancereport_team_id_team")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assurancereport")),
        sa.UniqueConstraint("team_id", "week", name="uq_assurancereport_team_week"),
    )
    # The outcome report reads a team's discharges of a period, everyone's presentations of a
    # period (repeat crisis), step-downs closed in a period, admissions, and step-up requests.
    with op.batch_alter_table("transition", schema=None) as batch_op:
        batch_op.create_index("ix_transition_kind_team_event", ["kind", "team_id", "event_time"])
        batch_op.create_index("ix_transition_kind_event", ["kind", "event_time"])
        batch_op.create_index("ix_transition_kind_team_closed", ["kind", "team_id", "closed_at"])
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        batch_op.create_index("ix_auditevent_action_transition", ["action", "transition_id"])
    with op.batch_alter_table("stepuprequest", schema=None) as batch_op:
        batch_op.create_index("ix_stepuprequest_team_requested", ["team_id", "requested_at"])


def downgrade() -> None:
    with op.batch_alter_table("stepuprequest", schema=None) as batch_op:
        batch_op.drop_index("ix_stepuprequest_team_requested")
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        batch_op.drop_index("ix_auditevent_action_transition")
    with op.batch_alter_table("transition", schema=None) as batch_op:
        batch_op.drop_index("ix_transition_kind_team_closed")
        batch_op.drop_index("ix_transition_kind_event")
        batch_op.drop_index("ix_transition_kind_team_event")
    op.drop_table("assurancereport")
