"""Synthetic notifications for tests: nobody real."""

from __future__ import annotations

import uuid
from datetime import datetime

from handrail.domain.notification import HandoffNotification


def ed_discharge(*, at: datetime, mrn: str | None = None, encounter: str | None = None,
                 phone: str = "+447700900123", time_zone: str = "Europe/London") -> HandoffNotification:
    return HandoffNotification.model_validate({
        "source": "emergency_department",
        "source_system": "st-elsewhere-ed",
        "encounter_id": encounter or f"ENC-{uuid.uuid4().hex[:8]}",
        "event_time": at.isoformat(),
        "person": {
            "identifiers": [{"system": "urn:oid:2.16.840.1.113883.19.5",
                             "value": mrn or uuid.uuid4().hex[:10]}],
            "given_name": "Alex", "family_name": "Testperson", "birth_date": "1990-04-01",
            "phone": phone, "time_zone": time_zone,
        },
        "summary": {
            "risk_factors": ["recent self-harm"], "current_medications": ["sertraline 50mg"],
            "immediate_stressors": ["housing"], "safety_plan": "Call the crisis line; stay with sister.",
            "next_step_recommendation": "Community follow-up within 72 hours",
        },
    })
