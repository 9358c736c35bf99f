"""A tiny workflow that carries a synthetic person's details through every kind of payload:
input, activity argument and result, signal, update, query, result, and a failure message.
Imports only temporalio and pydantic, so the workflow sandbox can re-import it."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError


class Referral(BaseModel):
    name: str
    phone: str
    summary: str
    fail: bool = False


@activity.defn
async def route_summary(referral: Referral) -> str:
    return f"summary for {referral.name}: {referral.summary}"


@workflow.defn
class PayloadProbe:
    @workflow.init
    def __init__(self, referral: Referral) -> None:
        self.replies: list[str] = []
        self.notes: list[str] = []

    @workflow.run
    async def run(self, referral: Referral) -> str:
        routed = await workflow.execute_activity(
            route_summary, referral, start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.wait_condition(lambda: bool(self.replies) and bool(self.notes))
        if referral.fail:
            raise ApplicationError(f"could not reach {referral.name} on {referral.phone}",
                                   non_retryable=True)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return f"{routed} / reply {self.replies[0]} / note {self.notes[0]}"

    @workflow.signal
    def person_reply(self, text: str) -> None:
        self.replies.append(text)

    @workflow.update
    def add_note(self, text: str) -> str:
        self.notes.append(text)
        return f"noted: {text}"

    @workflow.query
    def notes_so_far(self) -> list[str]:
        return list(self.notes)
