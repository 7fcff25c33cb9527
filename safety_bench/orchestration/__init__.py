"""Orchestration: running sweeps and nightly jobs, in this process or spread over a Ray cluster."""
