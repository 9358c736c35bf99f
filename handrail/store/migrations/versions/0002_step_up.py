"""the step-up: its huddle, capacity and timeliness record, and the indicators it counts

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 07:11:43.970895
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "indicator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("transition_id", sa.String(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_indicator_person_id_person")),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["staff.id"], name=op.f("fk_indicator_recorded_by_id_staff")
        ),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_indicator_team_id_team")),
        sa.ForeignKeyConstraint(
            ["transition_id"], ["transition.id"], name=op.f("fk_indicator_transition_id_transition")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indicator")),
        sa.UniqueConstraint("key", name=op.f("uq_indicator_key")),
    )
    with op.batch_alter_table("indicator", schema=None) as batch_op:
        batch_op.create_index("ix_indicator_person_observed", ["person_id", "observed_at"], unique=False)

    op.create_table(
        "stepuprequest",
        sa.Column("transition_id", sa.String(length=80), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("urgency", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("indicators", sa.JSON(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("contact_frequency_seconds", sa.Integer(), nullable=True),
        sa.Column("capacity_status", sa.String(length=20), nullable=True),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("slot_id", sa.Integer(), nullable=True),
        sa.Column("slot_claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("capacity_wait_seconds", sa.Float(), nullable=True),
        sa.Column("first_intensified_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["staff.id"], name=op.f("fk_stepuprequest_decided_by_id_staff")
        ),
        sa.ForeignKeyConstraint(["lead_id"], ["staff.id"], name=op.f("fk_stepuprequest_lead_id_staff")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_stepuprequest_person_id_person")),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["staff.id"], name=op.f("fk_stepuprequest_requested_by_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["slot_id"], ["stepupslot.id"], name=op.f("fk_stepuprequest_slot_id_stepupslot")
        ),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_stepuprequest_team_id_team")),
        sa.ForeignKeyConstraint(
            ["transition_id"], ["transition.id"], name=op.f("fk_stepuprequest_transition_id_transition")
        ),
        sa.PrimaryKeyConstraint("transition_id", name=op.f("pk_stepuprequest")),
    )
    with op.batch_alter_table("stepuprequest", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stepuprequest_person_id"), ["person_id"], unique=False)
        batch_op.create_index("ix_stepuprequest_team_capacity", ["team_id", "capacity_status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stepuprequest", schema=None) as batch_op:
        batch_op.drop_index("ix_stepuprequest_team_capacity")
        batch_op.drop_index(batch_op.f("ix_stepuprequest_person_id"))

    op.drop_table("stepuprequest")
    with op.batch_alter_table("indicator", schema=None) as batch_op:
        batch_op.drop_index("ix_indicator_person_observed")

    op.drop_table("indicator")
