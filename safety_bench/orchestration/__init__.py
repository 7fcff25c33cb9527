"""Orchestration: the landscape sweep (in this process or spread over a Ray cluster), its generation
settings, and nightly runs: they drive the lm-eval glue (harness) and the landscape core, and file results
in the store."""
