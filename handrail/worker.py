"""The Temporal worker: runs the pathways' workflows and their activities."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from .activities.admission_avoidance import AvoidanceActivities
from .activities.assurance import AssuranceActivities
from .activities.feedback import FeedbackActivities
from .activities.outreach import OutreachActivities
from .activities.records import RecordActivities
from .activities.step_down import StepDownActivities
from .activities.step_up import StepUpActivities
from .channels.base import Channel
from .config import Settings
from .workflows.admission_avoidance import AdmissionAvoidance
from .workflows.assurance import WeeklyAssurance
from .workflows.contact import Contact
from .workflows.handoff import PostCrisisHandoff
from .workflows.step_down import StepDown
from .workflows.step_up import StepUp

log = logging.getLogger("handrail.worker")

WORKFLOWS = [PostCrisisHandoff, Contact, StepUp, StepDown, AdmissionAvoidance, WeeklyAssurance]
ACTIVITY_THREADS = 16
# In-flight activities may finish for this long after SIGTERM; the rest are retried elsewhere.
GRACEFUL_SHUTDOWN = timedelta(seconds=20)


def activities_for(engine: Engine, channel: Channel, step_ups: StepUpActivities | None = None,
                   step_downs: StepDownActivities | None = None) -> list:
    records = RecordActivities(engine)
    outreach = OutreachActivities(engine, channel)
    step_ups = step_ups or StepUpActivities(engine)
    step_downs = step_downs or StepDownActivities(engine)
    return [
        records.record_handoff, records.update_transition, records.record_person_details,
        records.create_task, records.finish_task, records.cancel_open_tasks, records.hand_over_task,
        records.record_contact, records.record_decision, outreach.send_to_person,
        step_ups.record_step_up, step_ups.update_step_up_request, step_ups.claim_step_up_slot,
        step_ups.release_step_up_slot, step_ups.note_indicator,
        step_downs.record_step_down, step_downs.update_step_down_plan,
        step_downs.start_fast_track_step_up, step_downs.pass_warning_to_episode,
        step_downs.step_up_decision,
        *assurance_activities(engine), *avoidance_activities(engine),
        FeedbackActivities(engine).record_feedback,  # every pathway asks at its closure
    ]


def avoidance_activities(engine: Engine) -> list:
    avoidance = AvoidanceActivities(engine)
    return [avoidance.record_avoidance, avoidance.update_avoidance_episode, avoidance.record_carer]


def assurance_activities(engine: Engine) -> list:
    assurance = AssuranceActivities(engine)
    return [assurance.list_assurance_teams, assurance.write_assurance_report]


async def _ensure_schedules(client: Client, settings: Settings) -> None:
    """The weekly assurance schedule follows the policy at every start (handrail/schedules.py);
    a failure is logged and the worker still runs the pathways."""
    from .schedules import ensure_assurance_schedule

    try:
        await ensure_assurance_schedule(client, settings.load_policy(), settings.task_queue)
    except Exception:  # noqa: BLE001 - the pathways matter more than the report's schedule
        log.exception("could not create or update the weekly assurance schedule")


def build_worker(client: Client, settings: Settings, engine: Engine, channel: Channel,
                 executor: ThreadPoolExecutor | None = None) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        # Proposals start new step-ups: they need the client, and the policy new ones start on.
        activities=activities_for(engine, channel, StepUpActivities(
            engine, client=client, policy=settings.load_policy(), task_queue=settings.task_queue),
            # The fast track of an early warning sign starts a step-up: it needs the client.
            StepDownActivities(engine, client=client, task_queue=settings.task_queue)),
        # Store activities are synchronous (SQLAlchemy sessions), so they run on threads.
        activity_executor=executor or ThreadPoolExecutor(max_workers=ACTIVITY_THREADS),
        max_concurrent_activities=ACTIVITY_THREADS,
        # Finish (or hand back) in-flight activities on shutdown instead of cutting them off.
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


async def run_worker(settings: Settings) -> None:
    """Run until cancelled (SIGINT/SIGTERM in the CLI)."""
    from .channels.outbox import OutboxChannel
    from .observability.metrics import worker_runtime
    from .observability.tracing import setup_tracing
    from .store.db import make_engine
    from .temporal_client import connect

    settings.load_policy()  # refuse to start on an invalid policy, naming the field
    engine = make_engine(settings.resolved_database_url)
    try:
        from .channels.select import channel_from_settings  # Twilio when configured

        channel: Channel = channel_from_settings(settings)
    except ImportError:
        channel = OutboxChannel()
    setup_tracing(settings, "worker")
    client = await connect(settings, runtime=worker_runtime(settings))
    await _ensure_schedules(client, settings)
    worker = build_worker(client, settings, engine, channel)
    log.info("worker polling task queue %s at %s", settings.task_queue, settings.temporal_address)
    if settings.worker_metrics_address:
        log.info("worker metrics on %s", settings.worker_metrics_address)
    try:
        await worker.run()
    except asyncio.CancelledError:
        await worker.shutdown()
        raise
    finally:
        engine.dispose()
