"""The SQL store. Importing it registers the session hooks that keep each handoff's measure
clocks current (measure_facts), so that no code path can write a record and leave them stale."""

from . import measure_facts  # noqa: F401  (registers the hooks)
