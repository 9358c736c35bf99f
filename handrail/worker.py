"""The Temporal worker: runs the pathways' workflows and their activities."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from .activities.outreach import OutreachActivities
from .activities.records import RecordActivities
from .channels.base import Channel
from .config import Settings
from .workflows.contact import Contact
from .workflows.handoff import PostCrisisHandoff

log = logging.getLogger("handrail.worker")

WORKFLOWS = [PostCrisisHandoff, Contact]
ACTIVITY_THREADS = 16
# In-flight activities may finish for this long after SIGTERM; the rest are retried elsewhere.
GRACEFUL_SHUTDOWN = timedelta(seconds=20)


def activities_for(engine: Engine, channel: Channel) -> list:
    records = RecordActivities(engine)
    outreach = OutreachActivities(engine, channel)
    return [
        records.record_handoff, records.update_transition, records.record_person_details,
        records.create_task, records.finish_task, records.cancel_open_tasks,
        records.record_contact, records.record_decision, outreach.send_to_person,
    ]


def build_worker(client: Client, settings: Settings, engine: Engine, channel: Channel,
                 executor: ThreadPoolExecutor | None = None) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=activities_for(engine, channel),
        # Store activities are synchronous (SQLAlchemy sessions), so they run on threads.
        activity_executor=executor or ThreadPoolExecutor(max_workers=ACTIVITY_THREADS),
        max_concurrent_activities=ACTIVITY_THREADS,
        # Finish (or hand back) in-flight activities on shutdown instead of cutting them off.
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


async def run_worker(settings: Settings) -> None:
    """Run until cancelled (SIGINT/SIGTERM in the CLI)."""
    from .channels.outbox import OutboxChannel
    from .store.db import make_engine
    from .temporal_client import connect

    settings.load_policy()  # refuse to start on an invalid policy, naming the field
    engine = make_engine(settings.resolved_database_url)
    try:
        from .channels.select import channel_from_settings  # Twilio when configured

        channel: Channel = channel_from_settings(settings)
    except ImportError:
        channel = OutboxChannel()
    client = await connect(settings)
    worker = build_worker(client, settings, engine, channel)
    log.info("worker polling task queue %s at %s", settings.task_queue, settings.temporal_address)
    try:
        await worker.run()
    except asyncio.CancelledError:
        await worker.shutdown()
        raise
    finally:
        engine.dispose()
