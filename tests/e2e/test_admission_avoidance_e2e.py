"""Admission avoidance end to end, as staff see it through HTTP, on `handrail dev --policy seconds`.

A clinician opens an episode for a person in crisis, with the thresholds they propose and a
carer the person agrees may be kept informed; the clinical lead approves it (a colleague's
dissent recorded with its resolution); the carer hears it started, contacts go out and one is
recorded, and the review ends the episode "admission avoided" with its length on the record,
the carer told it ended. Beside it, a carer without consent and a carer whose consent is
withdrawn hear nothing more, while a risk rating past the threshold goes to the on-call senior,
who admits.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from devstack import DevStackProcess, running_stack, wait_for
from temporalio.client import Client, WorkflowExecutionStatus
from test_step_down_e2e import consenting_person
from test_step_up_e2e import Staff, task_of

pytestmark = pytest.mark.e2e

PERSON_PHONE = "+447700900556"  # as person_on_caseload gives every person


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    with running_stack(tmp_path_factory.mktemp("e2e-avoidance") / "data",
                       policy="seconds", demo_notifications=False) as dev:
        yield dev


@pytest.fixture(scope="module")
def staff(stack: DevStackProcess) -> dict[str, Staff]:
    logins = stack.logins()
    return {role: Staff(stack.api_url, logins[role]) for role in (
        "transition_coordinator", "clinician", "clinical_lead", "on_call_senior")}


def carer(phone: str, *, consent: bool) -> dict:
    return {"name": "Alex Carer", "phone": phone, "relationship": "partner", "consent": consent,
            "consent_source": "verbal, at the assessment"}


def messages_to(who: Staff, phone: str, transition_id: str) -> list[dict]:
    return sorted((m for m in who.get("/api/outbox", limit=500).json()
                   if m["to"] == phone and m["transition_id"] == transition_id), key=lambda m: m["id"])


def open_episode(staff: dict[str, Staff], mrn: str, carer_details: dict, **extra) -> str:
    person_id = consenting_person(staff["transition_coordinator"], mrn)
    opened = staff["clinician"].http.post("/api/admission-avoidance", json={
        "person_id": person_id, "reason": "In crisis tonight; partner at home, engaging with us",
        "carer": carer_details, **extra})
    assert opened.status_code == 202, opened.text
    assert opened.json()["carer_recorded"] is True
    episode = opened.json()["transition_id"]
    assert episode.startswith("avoid-")
    again = staff["clinician"].http.post("/api/admission-avoidance", json={
        "person_id": person_id, "reason": "Asked twice"})
    assert again.status_code == 409 and again.json()["detail"]["transition_id"] == episode
    return episode


def approve(staff: dict[str, Staff], episode: str, **extra) -> dict:
    lead = staff["clinical_lead"]
    wait_for(task_of(lead, episode, "avoidance_decision"), within=20, what="the senior decision task")
    body = {"decision": "approve", "rationale": "Safe at home with daily visits", **extra}
    refused = staff["clinician"].act(episode, "decide", body)
    assert refused.status_code == 403, refused.text
    decided = lead.act(episode, "decide", body)
    assert decided.status_code == 200, decided.text
    return decided.json()


def test_an_approved_episode_ends_admission_avoided_with_the_carer_kept_informed(staff) -> None:
    started = time.monotonic()
    clinician, lead = staff["clinician"], staff["clinical_lead"]
    carer_phone = "+447700900701"
    # Two misses in a row would be a threshold with the policy's; the clinician proposes three.
    episode = open_episode(staff, "E2E-AVOID-1", carer(carer_phone, consent=True),
                           proposed_thresholds={"risk_rating_at_or_above": 8,
                                                "missed_contacts_in_a_row": 3})
    decided = approve(staff, episode, dissent=[{
        "name": "Dr Dee Senior", "view": "Would admit tonight",
        "resolution": "Agreed: an evening visit and an early review"}])
    assert decided["stage"] == "intensive"
    assert decided["thresholds"]["risk_rating_at_or_above"] == 8  # the proposal, documented

    started_update = wait_for(lambda: messages_to(lead, carer_phone, episode), within=15,
                              what="the carer's started update")[0]
    assert "supporting someone close to you" in started_update["body"]
    assert "Testperson" not in started_update["body"]  # minimum necessary: no name, no detail
    wait_for(lambda: clinician.detail(episode)["status"]["active_contact_id"] == f"{episode}.c1",
             within=15, what="the first home contact")
    recorded = clinician.act(episode, "record-contact", {"outcome": "attended"})
    assert recorded.status_code == 200, recorded.text
    assert wait_for(lambda: messages_to(lead, PERSON_PHONE, episode), within=10,
                    what="the contacts' messages to the person")

    wait_for(task_of(lead, episode, "avoidance_review"), within=30, what="the senior review task")
    ended = lead.act(episode, "review", {"decision": "end", "reason": "Settled; back to usual care"})
    assert ended.status_code == 200, ended.text

    final = wait_for(lambda: (d := clinician.detail(episode))["stage"] == "closed" and d,
                     within=20, what="the episode to close")
    assert (final["status"]["outcome"], final["outcome"]) == ("admission_avoided", "admission_avoided")
    assert final["episode"]["outcome"] == "admission_avoided"
    assert final["episode"]["episode_seconds"] > 5 and final["status"]["episode_seconds"] > 5
    assert final["episode"]["dissent"][0]["resolution"].startswith("Agreed")
    [decision] = [d for d in final["decisions"] if d["kind"] == "admission_avoidance"]
    assert decision["decision"] == "approve"
    assert decision["decided_by_id"] == final["episode"]["decided_by_id"] is not None
    assert final["carer"]["receives_updates"] is True
    told = wait_for(lambda: len(messages_to(lead, carer_phone, episode)) >= 2
                    and messages_to(lead, carer_phone, episode), within=10,
                    what="the carer's ended update")
    assert "has ended" in told[-1]["body"]
    [closed] = [e for e in final["timeline"] if e["action"] == "transition.closed"]
    assert closed["detail"]["outcome"] == "admission_avoided" and closed["detail"]["episode_seconds"] > 5
    assert time.monotonic() - started < 45


def test_carers_without_consent_or_whose_consent_is_withdrawn_hear_nothing(staff) -> None:
    lead, senior = staff["clinical_lead"], staff["on_call_senior"]
    never, withdrawn = "+447700900702", "+447700900703"
    without = open_episode(staff, "E2E-AVOID-2", carer(never, consent=False))
    consented = open_episode(staff, "E2E-AVOID-3", carer(withdrawn, consent=True))
    for episode in (without, consented):
        approve(staff, episode)
    wait_for(lambda: messages_to(lead, withdrawn, consented), within=15, what="the started update")
    taken_back = staff["transition_coordinator"].act(consented, "withdraw-carer-consent",
                                                     {"note": "The person asked us on the phone"})
    assert taken_back.status_code == 200, taken_back.text
    assert staff["clinician"].detail(consented)["carer"]["receives_updates"] is False

    # A risk rating at the threshold goes at once to the on-call senior, who admits.
    for episode in (without, consented):
        rated = staff["clinician"].act(episode, "report-risk", {"rating": 9, "note": "plans to act"})
        assert rated.status_code == 200, rated.text
        wait_for(task_of(senior, episode, "avoidance_threshold"), within=15, what="the threshold task")
        refused = senior.act(episode, "review", {"decision": "end", "reason": "x"})
        assert refused.status_code == 422 and "continue or admit" in refused.text
        admitted = senior.act(episode, "review", {"decision": "admit", "reason": "Risk 9 of 10"})
        assert admitted.status_code == 200, admitted.text
    for episode in (without, consented):
        final = wait_for(lambda e=episode: (d := lead.detail(e))["stage"] == "closed" and d,
                         within=15, what="the episode to close admitted")
        assert final["outcome"] == "admitted" and final["episode"]["outcome_reason"] == "Risk 9 of 10"
        carer_steps = [(a["step"], a["status"]) for a in final["outreach_attempts"]
                       if a["step"].startswith("carer-")]
        assert ("carer-episode_ended-" in str(carer_steps)
                and all(status == "skipped_no_consent" for step, status in carer_steps
                        if "episode_ended" in step)), carer_steps
    assert messages_to(lead, never, without) == []
    [only] = messages_to(lead, withdrawn, consented)  # the started update, before the withdrawal
    assert "supporting someone close to you" in only["body"]


def test_consent_withdrawn_after_the_episode_has_ended_still_counts(stack, staff) -> None:
    """The workflow ends once the person's feedback window closes; the person's word about
    their carer still counts after that, so the withdrawal is written to the store."""
    lead, senior = staff["clinical_lead"], staff["on_call_senior"]
    episode = open_episode(staff, "E2E-AVOID-4", carer("+447700900704", consent=True))
    approve(staff, episode)
    rated = staff["clinician"].act(episode, "report-risk", {"rating": 9, "note": "plans to act"})
    assert rated.status_code == 200, rated.text
    wait_for(task_of(senior, episode, "avoidance_threshold"), within=15, what="the threshold task")
    assert senior.act(episode, "review", {"decision": "admit", "reason": "Risk 9"}).status_code == 200

    async def status() -> WorkflowExecutionStatus:  # the payloads are encrypted: ask the status
        client = await Client.connect(stack.temporal_address)
        return (await client.get_workflow_handle(episode).describe()).status

    # Closed, the feedback question asked and its window over: the workflow has completed.
    wait_for(lambda: asyncio.run(status()) == WorkflowExecutionStatus.COMPLETED, within=60,
             what="the episode's workflow to complete")
    assert lead.detail(episode)["carer"]["receives_updates"] is True
    withdrawn = staff["transition_coordinator"].act(episode, "withdraw-carer-consent",
                                                   {"note": "Phoned a week later"})
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["carer_consent_withdrawn"] is True
    detail = lead.detail(episode)
    assert detail["carer"]["receives_updates"] is False
    assert "carer.consent_withdrawn" in [e["action"] for e in detail["timeline"]]
