"""admission avoidance: its episodes, the person's named carer, and feedback at closure

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "carer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("relationship", sa.String(length=60), nullable=False),
        sa.Column("consent_given", sa.Boolean(), nullable=False),
        sa.Column("consent_recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consent_source", sa.String(length=100), nullable=True),
        sa.Column("consent_recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("consent_withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_carer_person_id_person")),
        sa.ForeignKeyConstraint(["consent_recorded_by_id"], ["staff.id"],
                                name=op.f("fk_carer_consent_recorded_by_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carer")),
        sa.UniqueConstraint("person_id", name=op.f("uq_carer_person_id")),
    )
    op.create_table(
        "avoidanceepisode",
        sa.Column("transition_id", sa.String(length=80), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("rationale", sa.String(length=2000), nullable=True),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("dissent", sa.JSON(), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("episode_seconds", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.Column("outcome_reason", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(["transition_id"], ["transition.id"],
                                name=op.f("fk_avoidanceepisode_transition_id_transition")),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_avoidanceepisode_team_id_team")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"],
                                name=op.f("fk_avoidanceepisode_person_id_person")),
        sa.ForeignKeyConstraint(["requested_by_id"], ["staff.id"],
                                name=op.f("fk_avoidanceepisode_requested_by_id_staff")),
        sa.ForeignKeyConstraint(["decided_by_id"], ["staff.id"],
                                name=op.f("fk_avoidanceepisode_decided_by_id_staff")),
        sa.PrimaryKeyConstraint("transition_id", name=op.f("pk_avoidanceepisode")),
    )
    with op.batch_alter_table("avoidanceepisode", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_avoidanceepisode_person_id"), ["person_id"], unique=False)
        batch_op.create_index("ix_avoidanceepisode_team_requested", ["team_id", "requested_at"],
                              unique=False)
    op.create_table(
        "transitionfeedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transition_id", sa.String(length=80), nullable=False),
        sa.Column("pathway", sa.String(length=40), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("comment", sa.String(length=1000), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["transition_id"], ["transition.id"],
                                name=op.f("fk_transitionfeedback_transition_id_transition")),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_transitionfeedback_team_id_team")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"],
                                name=op.f("fk_transitionfeedback_person_id_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transitionfeedback")),
        sa.UniqueConstraint("transition_id", name=op.f("uq_transitionfeedback_transition_id")),
    )
    with op.batch_alter_table("transitionfeedback", schema=None) as batch_op:
        batch_op.create_index("ix_transitionfeedback_team_asked", ["team_id", "asked_at"], unique=False)
    with op.batch_alter_table("outreachattempt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("carer_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_outreachattempt_carer_id_carer"), "carer",
                                    ["carer_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("outreachattempt", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_outreachattempt_carer_id_carer"), type_="foreignkey")
        batch_op.drop_column("carer_id")
    with op.batch_alter_table("transitionfeedback", schema=None) as batch_op:
        batch_op.drop_index("ix_transitionfeedback_team_asked")
    op.drop_table("transitionfeedback")
    with op.batch_alter_table("avoidanceepisode", schema=None) as batch_op:
        batch_op.drop_index("ix_avoidanceepisode_team_requested")
        batch_op.drop_index(batch_op.f("ix_avoidanceepisode_person_id"))
    op.drop_table("avoidanceepisode")
    op.drop_table("carer")
