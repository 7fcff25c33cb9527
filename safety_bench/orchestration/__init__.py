"""Orchestration: the landscape sweep, its generation settings, and nightly runs: they drive the lm-eval
glue (harness) and the landscape core, and file results in the store."""
