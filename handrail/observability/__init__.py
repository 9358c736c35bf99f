"""Logs, metrics and traces: the same for the worker, the API and the MLLP listener."""
