"""Which action forms a transition's console page offers: the API's own role rules, pathway
by pathway, so a button is never shown that the API would refuse with 403."""

from __future__ import annotations

from handrail.api.console.forms import available_actions


def _offered(role: str, kind: str = "admission_avoidance", transition_id: str = "avoid-0001") -> list[str]:
    return available_actions(transition_id, kind, "awaiting_decision", "open", role,
                             contact_in_progress=False)


def test_an_avoidance_decision_is_offered_to_its_seniors_not_to_a_supervisor():
    assert "decide" in _offered("clinical_lead")
    assert "decide" in _offered("on_call_senior")
    assert "decide" not in _offered("supervisor")  # the API answers 403: no button either
    assert "review" not in _offered("supervisor")


def test_a_crisis_worker_may_record_a_home_visit_of_an_episode():
    assert "record-contact" in _offered("crisis_worker")
    assert "decide" not in _offered("crisis_worker")
