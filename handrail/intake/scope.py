"""Which hospital units are which crisis source, and which events are in Handrail's scope.

These tables are data, kept in this one place so they can move into the pathway policy file.
"""

from __future__ import annotations

from ..domain.notification import CrisisSource
from .events import Scope

S = CrisisSource

# Point-of-care / unit codes (PV1-3.1, Encounter.location, Encounter.serviceType) as hospitals
# send them, upper-cased. `True` marks a crisis or mental-health unit: in scope by itself.
UNITS: dict[str, tuple[CrisisSource, bool]] = {
    "ED": (S.emergency_department, False),
    "ER": (S.emergency_department, False),
    "EMER": (S.emergency_department, False),
    "EMERGENCY": (S.emergency_department, False),
    "PED-ED": (S.emergency_department, False),
    "PSYCH-ED": (S.emergency_department, True),
    "PES": (S.emergency_department, True),  # psychiatric emergency service
    "CPEP": (S.crisis_stabilization, True),  # comprehensive psychiatric emergency program
    "CSU": (S.crisis_stabilization, True),
    "CRISIS": (S.crisis_stabilization, True),
    "EMPATH": (S.crisis_stabilization, True),  # emergency psychiatric assessment unit
    "CRISIS-LINE": (S.crisis_line, True),
    "988": (S.crisis_line, True),
    "BHU": (S.inpatient, True),
    "PSYCH": (S.inpatient, True),
    "MHU": (S.inpatient, True),
    "IPU-MH": (S.inpatient, True),
}

# Patient class (PV1-2, Encounter.class) when the unit is not in the table.
PATIENT_CLASSES: dict[str, CrisisSource] = {
    "E": S.emergency_department,
    "EMER": S.emergency_department,
    "I": S.inpatient,
    "IMP": S.inpatient,
    "ACUTE": S.inpatient,
}

# ICD-10 codes that put an event in scope: all of chapter F (mental and behavioural disorders),
# intentional self-harm X71-X83, and suicidal ideation R45.851 (ICD-10-CM).
DIAGNOSIS_PREFIXES: tuple[str, ...] = ("F", *(f"X{n}" for n in range(71, 84)), "R45851")


def source_for(unit: str | None, patient_class: str | None) -> CrisisSource | None:
    if unit and unit.strip().upper() in UNITS:
        return UNITS[unit.strip().upper()][0]
    if patient_class and patient_class.strip().upper() in PATIENT_CLASSES:
        return PATIENT_CLASSES[patient_class.strip().upper()]
    return None


def normalise_code(code: str) -> str:
    return code.replace(".", "").replace(" ", "").upper()


def assess(*, unit: str | None, diagnosis_codes: list[str], flagged: bool) -> Scope:
    if flagged:
        return Scope(in_scope=True, reason="flag")
    if unit and UNITS.get(unit.strip().upper(), (None, False))[1]:
        return Scope(in_scope=True, reason=f"unit:{unit.strip().upper()}")
    for code in diagnosis_codes:
        if normalise_code(code).startswith(DIAGNOSIS_PREFIXES):
            # Only the chapter goes into the reason: the reason is counted, not the diagnosis.
            return Scope(in_scope=True, reason=f"diagnosis:{normalise_code(code)[:1]}")
    return Scope(in_scope=False, reason="none")
