"""What each hospital event does to a handoff's whereabouts (the pure rule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handrail.domain.intake import (
    EncounterEvent,
    EncounterEventKind,
    EncounterWhereabouts,
    apply_encounter_event,
)
from tests.workflows.notifications import ed_discharge

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
K = EncounterEventKind


def event(kind: EncounterEventKind, at: datetime = T0) -> EncounterEvent:
    return EncounterEvent(kind=kind, trigger="x", message_id="m", occurred_at=at,
                          notification=ed_discharge(at=at))


def walk(*kinds: EncounterEventKind, started: bool = False) -> EncounterWhereabouts:
    where = EncounterWhereabouts(discharged_at=T0)
    for n, kind in enumerate(kinds):
        where = apply_encounter_event(where, event(kind, T0 + timedelta(hours=n)),
                                      pathway_started=started)
    return where


def test_a_registration_waits_for_the_discharge_that_sets_the_clock():
    assert walk(K.ed_registration).on_hold
    where = walk(K.ed_registration, K.discharge)
    assert not where.on_hold and where.discharged_at == T0 + timedelta(hours=1)


def test_a_registration_after_a_discharge_or_a_started_pathway_changes_nothing():
    assert not walk(K.discharge, K.ed_registration).on_hold
    assert not walk(K.ed_registration, started=True).on_hold


def test_admission_holds_and_its_cancellation_resumes():
    assert walk(K.admission).inpatient
    assert not walk(K.admission, K.cancel_admission).on_hold


def test_a_cancelled_discharge_waits_again_and_a_cancelled_registration_closes():
    assert walk(K.discharge, K.cancel_discharge).on_hold
    assert walk(K.ed_registration, K.cancel_admission).registration_cancelled
    assert not walk(K.discharge, K.cancel_admission).registration_cancelled
