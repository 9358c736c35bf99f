"""the step-down taper: its plan and links, and the transitions that follow a step-down

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stepdownplan",
        sa.Column("transition_id", sa.String(length=80), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("monitoring_owner_id", sa.Integer(), nullable=True),
        sa.Column("step_up_id", sa.String(), nullable=True),
        sa.Column("re_escalation_id", sa.String(length=80), nullable=True),
        sa.Column("stabilization", sa.JSON(), nullable=False),
        sa.Column("contingency", sa.JSON(), nullable=False),
        sa.Column("taper_dates", sa.JSON(), nullable=False),
        sa.Column("adjustments", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exit_plan", sa.JSON(), nullable=True),
        sa.Column("discharged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["monitoring_owner_id"], ["staff.id"],
                                name=op.f("fk_stepdownplan_monitoring_owner_id_staff")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_stepdownplan_person_id_person")),
        sa.ForeignKeyConstraint(["step_up_id"], ["transition.id"],
                                name=op.f("fk_stepdownplan_step_up_id_transition")),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_stepdownplan_team_id_team")),
        sa.ForeignKeyConstraint(["transition_id"], ["transition.id"],
                                name=op.f("fk_stepdownplan_transition_id_transition")),
        sa.PrimaryKeyConstraint("transition_id", name=op.f("pk_stepdownplan")),
    )
    with op.batch_alter_table("stepdownplan", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stepdownplan_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_stepdownplan_step_up_id"), ["step_up_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_stepdownplan_re_escalation_id"), ["re_escalation_id"],
                              unique=False)
    with op.batch_alter_table("transition", schema=None) as batch_op:
        batch_op.add_column(sa.Column("follows_step_down_id", sa.String(), nullable=True))
        batch_op.create_index(batch_op.f("ix_transition_follows_step_down_id"), ["follows_step_down_id"],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_transition_follows_step_down_id_transition"),
                                    "transition", ["follows_step_down_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("transition", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_transition_follows_step_down_id_transition"),
                                 type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_transition_follows_step_down_id"))
        batch_op.drop_column("follows_step_down_id")
    with op.batch_alter_table("stepdownplan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stepdownplan_re_escalation_id"))
        batch_op.drop_index(batch_op.f("ix_stepdownplan_step_up_id"))
        batch_op.drop_index(batch_op.f("ix_stepdownplan_person_id"))
    op.drop_table("stepdownplan")
