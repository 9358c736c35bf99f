"""Benchmark: warm handoffs posted through the HTTP API against the embedded stack.

Starts `handrail dev` (seconds policy, free ports, a throwaway data dir), then posts N synthetic
ED discharge notifications with C in flight, each confirmed with consent and booked, and
reports:
- handoffs/s: whole handoffs (POST, confirm-details, book, first outbox message) per second;
- recorded p50/p99: POST sent -> the transition's row is in the store (owner assigned);
- first message p50/p99: POST sent -> the booking confirmation is in the outbox (the
  notification, the two staff actions and the outreach, end to end);
and, on the same dev server, the rate of a bare one-activity workflow and the ratio.

    .venv/bin/python bench/handoff_intake.py --count 200 --concurrency 20 [--json out.json]

A benchmark, not a test: loopback only, bounded in count and time, stops what it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bare_workflow import BareWorkflow, touch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HANDRAIL = Path(sys.executable).parent / "handrail"
DEADLINE = 300  # seconds: nothing here waits longer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def notification(n: int) -> dict:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "source": "emergency_department", "source_system": "bench-ed",
        "encounter_id": f"bench-{uuid.uuid4().hex[:12]}", "event_time": now.isoformat(),
        "person": {"identifiers": [{"system": "urn:bench:mrn", "value": f"B{n:06d}-{uuid.uuid4().hex[:6]}"}],
                   "given_name": "Bench", "family_name": f"Person{n}", "phone": "+447700900123"},
        "summary": {"risk_factors": ["synthetic"], "safety_plan": "synthetic"},
    }


class Stack:
    def __init__(self) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="handrail-bench-"))
        self.temporal_port, self.api_port, self.ui_port = free_port(), free_port(), free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.data / "bench-dev.out", "w")  # noqa: SIM115 - lives as long as the stack
        self.process = subprocess.Popen(
            [str(HANDRAIL), "dev", "--data-dir", str(self.data), "--policy", "seconds", "--headless",
             "--temporal-port", str(self.temporal_port), "--api-port", str(self.api_port),
             "--ui-port", str(self.ui_port), "--no-demo-notifications"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        out = self.data / "bench-dev.out"
        for _ in range(240):
            if "Handrail is running" in out.read_text():
                return
            if self.process.poll() is not None:
                raise SystemExit(f"handrail dev exited: {out.read_text()[-2000:]}")
            time.sleep(0.5)
        raise SystemExit("handrail dev did not come up in 120 s")

    def token(self) -> str:
        for line in (self.data / "demo-logins.txt").read_text().splitlines():
            fields = line.split()
            if fields[:2] == ["transition_coordinator", "crisis-north"]:
                return fields[3]
        raise SystemExit("no transition coordinator in the demo logins")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


async def one_handoff(api: httpx.AsyncClient, n: int, store: Path, out: dict) -> None:
    started = time.perf_counter()
    answer = await api.post("/api/handoffs", json=notification(n))
    answer.raise_for_status()
    transition_id = answer.json()["transition_id"]
    actions = f"/api/transitions/{transition_id}/actions"
    for _ in range(600):  # until the workflow has recorded the person and can take the action
        reply = await api.post(f"{actions}/confirm-details", json={"consent_to_messages": True})
        if reply.status_code == 200:
            break
        await asyncio.sleep(0.05)
    out["recorded"] = time.perf_counter() - started
    appointment = (datetime.now(UTC) + timedelta(seconds=40)).replace(microsecond=0)
    (await api.post(f"{actions}/book", json={"appointment_at": appointment.isoformat()})).raise_for_status()
    database = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    try:
        for _ in range(DEADLINE * 20):
            row = database.execute("SELECT 1 FROM outboxmessage WHERE transition_id = ? LIMIT 1",
                                   (transition_id,)).fetchone()
            if row:
                out["first_message"] = time.perf_counter() - started
                return
            await asyncio.sleep(0.05)
    finally:
        database.close()


async def handoffs(stack: Stack, count: int, concurrency: int) -> dict:
    results = [dict() for _ in range(count)]
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.api_port}", timeout=60,
                                 headers={"Authorization": f"Bearer {stack.token()}"}) as api:
        async def run(n: int) -> None:
            async with gate:
                await one_handoff(api, n, stack.data / "handrail.db", results[n])

        began = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(run(n) for n in range(count))), DEADLINE)
        span = time.perf_counter() - began
    recorded = [r["recorded"] for r in results]
    first = [r["first_message"] for r in results if "first_message" in r]
    return {"count": count, "concurrency": concurrency,
            "handoffs_per_s": count / span,
            "recorded_p50_s": statistics.median(recorded), "recorded_p99_s": percentile(recorded, 0.99),
            "first_message_p50_s": statistics.median(first), "first_message_p99_s": percentile(first, 0.99),
            "first_messages": len(first)}


async def bare(stack: Stack, count: int, concurrency: int) -> dict:
    client = await Client.connect(f"127.0.0.1:{stack.temporal_port}")
    queue = f"bench-bare-{uuid.uuid4().hex[:6]}"
    gate = asyncio.Semaphore(concurrency)
    async with Worker(client, task_queue=queue, workflows=[BareWorkflow], activities=[touch]):
        async def run(n: int) -> None:
            async with gate:
                await client.execute_workflow(BareWorkflow.run, n, id=f"{queue}-{n}", task_queue=queue)

        began = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(run(n) for n in range(count))), DEADLINE)
        return {"workflows_per_s": count / (time.perf_counter() - began)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    stack = Stack()
    try:
        stack.start()
        handoff = await handoffs(stack, args.count, args.concurrency)
        yardstick = await bare(stack, args.count, args.concurrency)
    finally:
        stack.stop()
    result = {**handoff, "bare_workflows_per_s": yardstick["workflows_per_s"],
              "handoff_to_bare_ratio": handoff["handoffs_per_s"] / yardstick["workflows_per_s"],
              "cpus": os.cpu_count()}
    print(f"{args.count} handoffs, {args.concurrency} in flight, {os.cpu_count()} cores")
    print(f"  handoffs, each through to its first message  {result['handoffs_per_s']:6.1f} /s")
    print(f"  recorded (POST -> row, owner)     p50 {result['recorded_p50_s']:.2f} s   "
          f"p99 {result['recorded_p99_s']:.2f} s")
    print(f"  first outbox message (POST -> confirmation, via confirm + book)  "
          f"p50 {result['first_message_p50_s']:.2f} s   p99 {result['first_message_p99_s']:.2f} s"
          f"   ({result['first_messages']}/{args.count})")
    print(f"  bare one-activity workflow        {result['bare_workflows_per_s']:8.1f} /s")
    print(f"  ratio handoff / bare              {result['handoff_to_bare_ratio']:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
