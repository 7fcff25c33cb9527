"""`safety-bench finetune`: the benign fine-tuning attack in miniature.

Fine-tunes a (usually aligned) chat model on harmless instruction data only — the bundled helpful Q&A
set or any local JSONL — with LoRA or full fine-tuning. Nothing in the data asks for harm; the point
(Qi et al., 2023) is that ordinary fine-tuning still wears safety away.

`--adapter` merges an aligned LoRA adapter into `--model` first, so `--model base --adapter aligned`
fine-tunes the aligned model. Outputs:
- `--full`, or `--lora --merge`: a full HF folder with the same parameter names and shapes as the
  model it started from, ready for the landscape's interpolation (aligned → fine-tuned);
- `--lora`: an adapter folder that applies on top of `--model` with `--adapter` merged.
Each output has `recipe.json` and `train_log.jsonl`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from safety_bench.provenance import software_versions
from safety_bench.training import core, datasets
from safety_bench.training.align import RECIPE_FILE, TRAIN_LOG, LoraSettings, load_model, resolve_model_dir

log = logging.getLogger(__name__)

DEFAULT_LR = {"lora": 2e-4, "full": 2e-5}


@dataclass
class FinetuneConfig:
    mode: str = "lora"  # "lora" or "full"
    lr: float | None = None  # None: DEFAULT_LR[mode]
    batch_size: int = 8
    epochs: float = 3.0
    max_steps: int | None = None
    seed: int = 0
    lora: LoraSettings = field(default_factory=LoraSettings)
    data: str | None = None  # JSONL with instruction/response; None: the bundled benign set
    limit: int | None = None
    merge: bool = False  # with lora: write the merged full model instead of the adapter
    system_variants: tuple[str, ...] = ("default", "empty")
    max_length: int = 384
    device: str = "auto"
    dtype: str = "float32"
    system_prompt: str | None = None  # literal system text for every example (overrides system_variants)
    micro_batch_size: int | None = None  # gradient accumulation: examples per forward pass (core.TrainSettings)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.mode]


def finetune(model: str | Path, out: str | Path, adapter: str | Path | None = None,
             config: FinetuneConfig | None = None, command: str | None = None, progress: bool = True) -> Path:
    """Fine-tune `model` (with `adapter` merged first, if given) on benign data; write the result to `out`."""
    return train_and_save(model, out, adapter, config, command, progress)[0]


def train_and_save(model: str | Path, out: str | Path, adapter: str | Path | None = None,
                   config: FinetuneConfig | None = None, command: str | None = None, progress: bool = True,
                   pairs: list[dict] | None = None, data_source: str | None = None,
                   extra_recipe: dict | None = None) -> tuple[Path, object, object, dict]:
    """The one fine-tuning path (`finetune` and `safety-bench attack` both use it): train on `pairs` (default:
    `config.data` or the bundled benign set), write the output folder, and return
    (folder, trained model still in memory, tokenizer, recipe) so a caller can evaluate without reloading."""
    from peft import get_peft_model

    config = config or FinetuneConfig()
    if config.mode not in DEFAULT_LR:
        raise ValueError(f"mode must be 'lora' or 'full', not {config.mode!r}")
    for v in config.system_variants:
        if v not in core.SYSTEM_VARIANTS:
            raise ValueError(f"unknown system variant {v!r}; use {', '.join(core.SYSTEM_VARIANTS)}")
    model_dir, model_name = resolve_model_dir(model)
    t0 = time.perf_counter()
    if pairs is None:
        pairs = datasets.read_pairs(config.data) if config.data else datasets.finetune_benign_pairs()
    if config.limit:
        pairs = pairs[:config.limit]
    core.seed_everything(config.seed)
    net, tokenizer = load_model(model_dir, adapter=adapter, device=config.device, dtype=config.dtype, merge=True)
    def system(i: int) -> str | None:
        if config.system_prompt is not None:
            return config.system_prompt
        return core.SYSTEM_VARIANTS[config.system_variants[i % len(config.system_variants)]]

    examples = [core.encode_example(tokenizer, p["instruction"], p["response"], system(i), True, config.max_length)
                for i, p in enumerate(pairs)]
    core.seed_everything(config.seed)
    if config.mode == "lora":
        net = get_peft_model(net, config.lora.peft_config())
    else:
        for p in net.parameters():
            p.requires_grad_(True)
    settings = core.TrainSettings(epochs=config.epochs, lr=config.learning_rate, batch_size=config.batch_size,
                                  max_steps=config.max_steps, seed=config.seed,
                                  micro_batch_size=config.micro_batch_size)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = Path(out)
    with core.atomic_dir(out) as tmp:
        entries = core.train(net, examples, settings, pad_id, tmp / TRAIN_LOG, progress)
        if config.mode == "lora" and not config.merge:
            net.save_pretrained(tmp)
            layout = "adapter"
        else:
            if config.mode == "lora":
                net = net.merge_and_unload()
            net.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            layout = "full"
        recipe = {
            "kind": "safety-bench finetune",
            "command": command,
            "layout": layout,
            "model": {"name": model_name, "path": str(model_dir), "fingerprint": core.model_fingerprint(model_dir)},
            "merged_adapter": str(adapter) if adapter else None,
            "seed": config.seed,
            "config": asdict(config) | {"lr": config.learning_rate},
            "training": asdict(settings),
            "data": {"source": data_source or config.data or f"bundled:{datasets.FINETUNE_BENIGN_FILE}",
                     "examples": len(pairs), "sha256": datasets.records_sha256(pairs)},
            "versions": software_versions(),
            "result": core.loss_summary(entries),
            "timing": {"total_s": round(time.perf_counter() - t0, 1)},
        } | dict(extra_recipe or {})
        core.write_json(tmp / RECIPE_FILE, recipe)
    log.info("fine-tuned %s written to %s (loss %.3f -> %.3f)", layout, out, recipe["result"]["first_loss"],
             recipe["result"]["last_loss"])
    return out, net, tokenizer, recipe
