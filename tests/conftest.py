"""Shared fixtures: tiny random models built in the test, and the real SmolLM2 (converted once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.models import build_tiny_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def smollm2() -> Path:
    from safety_bench.models import smollm2_dir

    try:
        return smollm2_dir()
    except FileNotFoundError as exc:
        pytest.fail(f"SmolLM2 is part of the test set-up: {exc}")


# Modules that run lm-eval, train, serve a model or drive a browser: `make test-fast` leaves them out.
INTEGRATION_MODULES = {
    "test_benchmark_landscape_speed", "test_cli_eval", "test_landscape_generation", "test_landscape_sweep",
    "test_leaderboard_board", "test_leaderboard_browser", "test_leaderboard_nightly", "test_leaderboard_remote",
    "test_records_pipeline", "test_reproduce_peft", "test_reproduce_script", "test_reproduce_store_judges",
    "test_smollm2_e2e", "test_tasks", "test_training_align", "test_training_finetune", "test_training_shipped", "test_training_borderline",
    "test_judges_classifiers", "test_direction_golden", "test_vllm_extension", "test_landscape_perturb",
    "test_attacks",
    "test_capability_landscape", "test_xstest",
    "test_study_run",
    "test_landscape_coherence",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in INTEGRATION_MODULES:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def transformers_server(smollm2: Path, tmp_path_factory: pytest.TempPathFactory):
    """`transformers serve` with SmolLM2 from the local folder on a loopback port, once per session
    (tests/helpers/transformers_serve.py). Tests cap max_tokens and records: the CPU is slow."""
    from helpers.transformers_serve import start, stop

    served = start(smollm2, tmp_path_factory.mktemp("serve") / "server.log")
    yield served
    stop(served)
