"""lm-eval in a loop: one `simple_evaluate` per grid point without paying its once-per-process costs
at every point.

lm-eval is built for one evaluation per process. Two of its per-call costs are pure overhead when a
sweep calls it 21 or 441 times in one process: collecting the environment report (`add_env_info` runs
`pip list` and friends in subprocesses: ~0.3 s per call, a third of the per-point budget on a small
model) and the git hash, which cannot change between points; and one progress bar per task per point
while building requests (11 bars per point, drowning the sweep's own bar). Inside `repeated_runs()` the
first call computes the environment report and the later ones reuse it; request building is silent.
Results are otherwise exactly what a stock `simple_evaluate` returns.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def _once(add_info: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """`add_info(storage)` computed on the first call, its additions replayed on later calls."""
    added: dict[str, Any] = {}

    def replay(storage: dict[str, Any]) -> None:
        if not added:
            before = set(storage)
            add_info(storage)
            added.update({k: copy.deepcopy(v) for k, v in storage.items() if k not in before})
            return
        storage.update(copy.deepcopy(added))

    return replay


@contextmanager
def repeated_runs() -> Iterator[None]:
    """Make repeated `lm_eval.simple_evaluate` calls in this process cheap (see the module docstring)."""
    import lm_eval.api.task as task_module
    import lm_eval.evaluator as evaluator

    saved = (evaluator.add_env_info, evaluator.get_git_commit_hash, task_module.tqdm)
    git_hash = functools.lru_cache(maxsize=1)(saved[1])
    evaluator.add_env_info = _once(saved[0])
    evaluator.get_git_commit_hash = git_hash
    task_module.tqdm = functools.partial(saved[2], disable=True)
    try:
        yield
    finally:
        evaluator.add_env_info, evaluator.get_git_commit_hash, task_module.tqdm = saved
