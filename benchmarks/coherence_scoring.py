"""Coherence scoring, side by side in one run: lm-eval's `loglikelihood` (one request per prompt + answer)
against the shared-prompt path (each prompt's KV cache once, its answers batched on copies of it), on the
answers of a finished landscape folder (every point's samples.jsonl and the origin's contexts.jsonl).

    python benchmarks/coherence_scoring.py LANDSCAPE_DIR [--model smollm2|FOLDER] [--batch-size 32] [--json OUT]

Reports both wall times, their ratio and the largest difference between the two paths' scores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def load_pairs(folder: Path) -> list[tuple[str, str]]:
    contexts = {}
    for path in folder.glob("points/*/contexts.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("context"):
                contexts[row["id"]] = row["context"]
    pairs = []
    for path in sorted(folder.glob("points/*/samples.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["id"] in contexts:
                pairs.append((contexts[row["id"]], row.get("response") or ""))
    return pairs


def main() -> None:
    import torch
    from lm_eval.models.huggingface import HFLM

    from safety_bench.harness import coherence
    from safety_bench.models import smollm2_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("landscape")
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--json")
    args = ap.parse_args()
    pairs = [p for p in load_pairs(Path(args.landscape)) if p[1].strip()]
    if not pairs:
        raise SystemExit(f"{args.landscape}: no answers with contexts (run the landscape with coherence on)")
    model = str(smollm2_dir()) if args.model == "smollm2" else args.model
    lm = HFLM(pretrained=model, device="cpu", batch_size=args.batch_size)
    t0 = time.perf_counter()
    reference = coherence._score_with_lm_eval(lm, pairs)
    t1 = time.perf_counter()
    fast = coherence.score_answers(lm, pairs)
    t2 = time.perf_counter()
    diff = max(abs(a - b) for a, b in zip(fast, reference, strict=True) if a is not None and b is not None)
    result = {"landscape": args.landscape, "model": model, "pairs": len(pairs),
              "distinct_prompts": len({c for c, _ in pairs}), "batch_size": args.batch_size,
              "lm_eval_loglikelihood_s": round(t1 - t0, 2), "shared_prompt_s": round(t2 - t1, 2),
              "speedup": round((t1 - t0) / (t2 - t1), 2), "max_abs_diff_nats_per_token": diff,
              "machine": {"cores": os.cpu_count(), "loadavg": os.getloadavg(), "python": platform.python_version(),
                          "torch": torch.__version__, "threads": torch.get_num_threads()}}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
