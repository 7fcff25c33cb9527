"""`safety-bench align`: a small LoRA safety-tuning recipe that turns a chat model into an aligned one.

Data: harmful requests paired with short refusals (the bundled 220, 20 per category), and harmless
prompts paired with the *base model's own* greedy answers (self-distillation: it keeps its helpfulness
and style without hand-written answers): everyday benign prompts and borderline-safe ones that only sound
harmful ("kill a process", history, definitions, fictional figures), which teach the model not to refuse
on alarming words alone. A distilled answer that is itself a refusal is dropped, so nothing harmless is
ever paired with a refusal. The base answers are generated once, batched, and cached in the
output folder (`distill_cache.jsonl`), so a re-run with the same `--out` skips generation.
Training: the chat template is applied and only the assistant tokens carry loss; every example is
rendered with one of the system-turn variants (the template's default, or an explicit empty system
turn) so the refusals do not hang on one system prompt.

Output folder: `adapter_config.json` + `adapter_model.safetensors` (peft), `recipe.json` (command,
seed, settings, data hashes, versions, loss summary), `train_log.jsonl` (loss per step) and the
distillation cache. `merge_adapter()` folds an adapter into a full HF folder with the base's names and
shapes, which is what the landscape sweep interpolates between.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from safety_bench.models import SMOLLM2_NAME, smollm2_dir
from safety_bench.provenance import pick_device, pick_dtype, software_versions
from safety_bench.training import core, datasets

log = logging.getLogger(__name__)

DISTILL_CACHE = "distill_cache.jsonl"
RECIPE_FILE = "recipe.json"
TRAIN_LOG = "train_log.jsonl"
SMOLLM2_ALIAS = "smollm2"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


@dataclass
class LoraSettings:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"

    def peft_config(self):
        from peft import LoraConfig, TaskType

        return LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, task_type=TaskType.CAUSAL_LM)


@dataclass
class AlignConfig:
    seed: int = 0
    epochs: float = 2.0
    lr: float = 2e-4
    batch_size: int = 8
    max_steps: int | None = None
    lora: LoraSettings = field(default_factory=LoraSettings)
    distill_max_new_tokens: int = 48
    gen_batch_size: int = 16
    max_length: int = 384
    system_variants: tuple[str, ...] = ("default", "empty")
    harmful_per_category: int | None = None  # None: all 20 per category
    benign_limit: int | None = None  # None: every benign prompt
    harmful_file: str | None = None  # JSONL with instruction + response (default: the bundled set)
    benign_file: str | None = None  # JSONL with instruction (default: the bundled set)
    borderline: bool = True  # add the borderline-safe prompts (self-distilled like the benign ones)
    borderline_file: str | None = None  # JSONL with instruction (default: the bundled align_borderline set)
    borderline_limit: int | None = None  # None: every borderline prompt
    benign_repeat: int = 1  # each benign/borderline example appears this many times per epoch (the mix)
    init_adapter: str | None = None  # continue training this LoRA adapter instead of a fresh one
    device: str = "auto"
    dtype: str = "auto"
    save_dtype: str = "float16"  # the adapter file's dtype (LoRA weights are small; half the bytes)


def resolve_model_dir(name: str | Path) -> tuple[Path, str]:
    """(folder, display name); `smollm2` stands for the embedded SmolLM2-135M-Instruct."""
    if str(name) == SMOLLM2_ALIAS:
        return smollm2_dir(), SMOLLM2_NAME
    path = Path(name)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{str(path)!r} is not a Hugging Face model folder (no config.json); "
                                f"use '{SMOLLM2_ALIAS}' for the embedded SmolLM2")
    return path, path.name


def load_model(model_dir: str | Path, adapter: str | Path | None = None, device: str = "auto",
               dtype: str = "auto", merge: bool = True):
    """(model, tokenizer) from a HF folder, with an optional LoRA adapter merged in (or attached)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = pick_device(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=pick_dtype(dtype, dev)).to(dev)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
        if merge:
            model = model.merge_and_unload()
    model.eval()
    return model, tokenizer


def _variant(i: int, variants: tuple[str, ...]) -> str:
    return variants[i % len(variants)]


def _cache_key(fingerprint: str, instruction: str, system: str | None, max_new_tokens: int) -> str:
    raw = f"{fingerprint}\x00{system!r}\x00{max_new_tokens}\x00{instruction}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]


def harmful_set(config: AlignConfig) -> list[dict]:
    rows = datasets.read_pairs(config.harmful_file) if config.harmful_file else datasets.align_harmful_pairs()
    if config.harmful_per_category:
        counts: dict[str, int] = {}
        kept = []
        for r in rows:
            c = r.get("category", "harmful")
            if counts.get(c, 0) < config.harmful_per_category:
                kept.append(r)
                counts[c] = counts.get(c, 0) + 1
        rows = kept
    return rows


def benign_set(config: AlignConfig) -> list[dict]:
    rows = datasets.read_prompts(config.benign_file) if config.benign_file else datasets.align_benign_prompts()
    return rows[:config.benign_limit] if config.benign_limit else rows


def borderline_set(config: AlignConfig) -> list[dict]:
    """The borderline-safe prompts to self-distil (none with `borderline=False`)."""
    if not config.borderline:
        return []
    rows = (datasets.read_prompts(config.borderline_file) if config.borderline_file
            else datasets.align_borderline_prompts())
    return rows[:config.borderline_limit] if config.borderline_limit else rows


def usable_answers(distilled: list[dict]) -> tuple[list[dict], int]:
    """(distilled answers worth training on, number dropped): empty answers teach nothing, and an answer
    the refusal heuristic reads as a refusal would teach the very over-refusal the recipe fights."""
    from safety_bench.judges.keyword import heuristic_is_refusal

    kept = [r for r in distilled if r["response"].strip() and not heuristic_is_refusal(r["response"])]
    return kept, len(distilled) - len(kept)


def distill(model, tokenizer, prompts: list[dict], config: AlignConfig, fingerprint: str,
            cache_path: Path | None, progress: bool = True) -> list[dict]:
    """The base model's greedy answers to the benign prompts, reusing and extending the cache."""
    cached = {}
    if cache_path is not None and cache_path.is_file():
        cached = {r["key"]: r for r in core.read_jsonl(cache_path)}
    rows, todo = [], []
    for i, p in enumerate(prompts):
        variant = _variant(i, config.system_variants)
        system = core.SYSTEM_VARIANTS[variant]
        key = _cache_key(fingerprint, p["instruction"], system, config.distill_max_new_tokens)
        row = cached.get(key) or {"key": key, "id": p["id"], "instruction": p["instruction"],
                                  "system_variant": variant, "max_new_tokens": config.distill_max_new_tokens,
                                  "model": fingerprint}
        rows.append(row)
        if "response" not in row:
            todo.append((row, system))
    if todo:
        log.info("self-distillation: %d of %d benign answers to generate (%d cached)", len(todo), len(rows),
                 len(rows) - len(todo))
        todo.sort(key=lambda item: -len(item[0]["instruction"]))  # similar lengths batch together
        from tqdm.auto import tqdm

        with tqdm(total=len(todo), desc="self-distillation", disable=not progress, unit="prompt") as bar:
            for start in range(0, len(todo), config.gen_batch_size):
                chunk = todo[start:start + config.gen_batch_size]
                texts = [core.prompt_text(tokenizer, row["instruction"], system) for row, system in chunk]
                answers = core.generate_greedy(model, tokenizer, texts, config.distill_max_new_tokens,
                                               config.gen_batch_size, progress=False)
                for (row, _), (text, finished) in zip(chunk, answers, strict=True):
                    row["response"], row["finished"] = text, finished
                if cache_path is not None:  # saved after every batch: a killed run resumes where it stopped
                    keep = {r["key"]: r for r in cached.values()}
                    keep.update({r["key"]: r for r in rows if "response" in r})
                    cache_path.parent.mkdir(parents=True, exist_ok=True)
                    core.write_jsonl(cache_path, list(keep.values()))
                bar.update(len(chunk))
    return rows


def build_examples(tokenizer, harmful: list[dict], distilled: list[dict], config: AlignConfig) -> list[core.Example]:
    examples = []
    for i, r in enumerate(harmful):
        system = core.SYSTEM_VARIANTS[_variant(i, config.system_variants)]
        examples.append(core.encode_example(tokenizer, r["instruction"], r["response"], system, True,
                                            config.max_length))
    kept, _ = usable_answers(distilled)
    for _ in range(max(1, config.benign_repeat)):
        for r in kept:
            examples.append(core.encode_example(tokenizer, r["instruction"], r["response"],
                                                core.SYSTEM_VARIANTS[r["system_variant"]], bool(r["finished"]),
                                                config.max_length))
    return examples


def align(base: str | Path, out: str | Path, config: AlignConfig | None = None, command: str | None = None,
          progress: bool = True) -> Path:
    """Train a safety LoRA adapter for `base` and write it (with recipe and log) to `out`."""
    from peft import get_peft_model

    config = config or AlignConfig()
    for v in config.system_variants:
        if v not in core.SYSTEM_VARIANTS:
            raise ValueError(f"unknown system variant {v!r}; use {', '.join(core.SYSTEM_VARIANTS)}")
    if config.init_adapter:
        check_init_adapter(config)
    base_dir, base_name = resolve_model_dir(base)
    out = Path(out)
    t0 = time.perf_counter()
    core.seed_everything(config.seed)
    model, tokenizer = load_model(base_dir, device=config.device, dtype=config.dtype)
    fingerprint = core.model_fingerprint(base_dir)
    harmful = harmful_set(config)
    benign = benign_set(config)
    borderline = borderline_set(config)
    overlap = datasets.eval_overlap([r["instruction"] for r in harmful + benign + borderline])
    if overlap:
        log.warning("%d training prompts overlap the evaluation prompts, e.g. %r", len(overlap), overlap[0][1])
    distilled = distill(model, tokenizer, benign + borderline, config, fingerprint, out / DISTILL_CACHE, progress)
    _, dropped = usable_answers(distilled)
    t_distill = time.perf_counter() - t0
    examples = build_examples(tokenizer, harmful, distilled, config)

    core.seed_everything(config.seed)  # the LoRA init and dropout draw from here, after generation
    init = None
    if config.init_adapter:
        model, init = continue_adapter(model, config)
    else:
        model = get_peft_model(model, config.lora.peft_config())
    if progress:
        model.print_trainable_parameters()
    settings = core.TrainSettings(epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
                                  max_steps=config.max_steps, seed=config.seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with core.atomic_dir(out) as tmp:
        entries = core.train(model, examples, settings, pad_id, tmp / TRAIN_LOG, progress)
        model.save_pretrained(tmp)
        cast_adapter_file(tmp / ADAPTER_WEIGHTS, config.save_dtype)
        _portable_adapter_config(tmp, base_name if str(base) == SMOLLM2_ALIAS else str(base))
        if (out / DISTILL_CACHE).is_file():
            shutil.copy2(out / DISTILL_CACHE, tmp / DISTILL_CACHE)
        recipe = {
            "kind": "safety-bench align",
            "command": command,
            "base": {"name": base_name, "path": str(base_dir), "fingerprint": fingerprint},
            "seed": config.seed,
            "config": asdict(config),
            "training": asdict(settings) | {"device": str(next(model.parameters()).device),
                                            "dtype": str(next(model.parameters()).dtype)},
            "data": {
                "harmful": {"source": config.harmful_file or f"bundled:{datasets.ALIGN_HARMFUL_FILE}",
                            "examples": len(harmful), "sha256": datasets.records_sha256(harmful)},
                "benign": {"source": config.benign_file or f"bundled:{datasets.ALIGN_BENIGN_FILE}",
                           "examples": len(benign), "sha256": datasets.records_sha256(benign),
                           "distilled_sha256": datasets.records_sha256(
                               [{k: r[k] for k in ("instruction", "response", "finished")} for r in distilled]),
                           "distilled_finished": sum(bool(r["finished"]) for r in distilled)},
                "borderline": {"source": (config.borderline_file or f"bundled:{datasets.ALIGN_BORDERLINE_FILE}")
                               if config.borderline else None,
                               "examples": len(borderline), "sha256": datasets.records_sha256(borderline)},
                "distilled_refusals_dropped": dropped,
                "benign_repeat": config.benign_repeat,
                "training_examples": len(examples),
                "eval_overlap": len(overlap),
            },
            "init_adapter": init,
            "versions": software_versions(),
            "result": core.loss_summary(entries),
            "timing": {"distill_s": round(t_distill, 1), "total_s": round(time.perf_counter() - t0, 1)},
        }
        core.write_json(tmp / RECIPE_FILE, recipe)
        write_readme(tmp / "README.md", recipe)
    log.info("aligned adapter written to %s (loss %.3f -> %.3f)", out, recipe["result"]["first_loss"],
             recipe["result"]["last_loss"])
    return out


def check_init_adapter(config: AlignConfig) -> Path:
    """The `init_adapter` folder, checked before anything is loaded or written."""
    import json

    folder = Path(str(config.init_adapter))
    cfg_path = folder / "adapter_config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"--init-adapter {str(folder)!r} is not a LoRA adapter folder (no adapter_config.json)")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if int(cfg.get("r", -1)) != config.lora.rank:
        raise ValueError(f"--init-adapter {str(folder)!r} has LoRA rank {cfg.get('r')}, not --rank "
                         f"{config.lora.rank}; pass --rank {cfg.get('r')}")
    return folder


def continue_adapter(model, config: AlignConfig):
    """(model with `config.init_adapter` attached and trainable, its record for recipe.json). The adapter's
    own LoRA settings (rank, alpha, targets) apply; `config.lora` must agree on rank, so the recipe says
    what was trained."""
    import json

    from peft import PeftModel

    folder = check_init_adapter(config)
    model = PeftModel.from_pretrained(model, str(folder), is_trainable=True)
    record = {"path": str(folder), "weights_sha256": datasets.file_sha256(folder / ADAPTER_WEIGHTS)}
    recipe = folder / RECIPE_FILE
    if recipe.is_file():
        record["command"] = json.loads(recipe.read_text(encoding="utf-8")).get("command")
    return model, record


def _portable_adapter_config(folder: Path, base_name: str) -> None:
    """Record the base by the name the user gave (not a machine-specific cache path)."""
    path = folder / "adapter_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg["base_model_name_or_path"] = base_name
    core.write_json(path, cfg)


def cast_adapter_file(path: Path, dtype: str) -> None:
    """Rewrite a safetensors file with its floating-point tensors in `dtype` (peft casts them back to the
    model's dtype when it loads the adapter)."""
    from safetensors.torch import load_file, save_file

    target = pick_dtype(dtype, "cpu")
    tensors = load_file(path)
    if all(t.dtype == target for t in tensors.values()):
        return
    cast = {k: (v.to(target) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(cast, tmp, metadata={"format": "pt"})
    tmp.replace(path)


def write_readme(path: Path, recipe: dict) -> None:
    """A short card for the adapter folder (replaces peft's generic template)."""
    data = recipe["data"]
    lines = [
        f"# Safety LoRA adapter for {recipe['base']['name']}",
        "",
        "Made by `safety-bench align` (docs/training.md): harmful requests paired with refusals, and benign",
        "prompts paired with the base model's own greedy answers; loss on the assistant tokens only.",
        "",
        "Reproduce (same seed, same software versions; see recipe.json):",
        "",
        "```",
        recipe["command"] or "(made through the Python API; settings in recipe.json)",
        "```",
        *([f"(continues the adapter `{recipe['init_adapter']['path']}`, made by "
           f"`{recipe['init_adapter'].get('command')}`)"] if recipe.get("init_adapter") else []),
        "",
        f"- base: {recipe['base']['name']} (fingerprint {recipe['base']['fingerprint']})",
        f"- seed: {recipe['seed']}",
        f"- data: {data['harmful']['examples']} harmful/refusal pairs ({data['harmful']['source']}), "
        f"{data['benign']['examples']} self-distilled benign pairs ({data['benign']['source']}), "
        f"{data.get('borderline', {}).get('examples', 0)} self-distilled borderline-safe pairs "
        f"({data.get('borderline', {}).get('source')}); {data.get('distilled_refusals_dropped', 0)} distilled "
        f"answers dropped as refusals; "
        f"overlap with evaluation prompts: {data['eval_overlap']}",
        f"- loss: {recipe['result'].get('first_loss')} -> {recipe['result'].get('last_loss')} over "
        f"{recipe['result'].get('steps')} steps (train_log.jsonl)",
        f"- versions: {', '.join(f'{k} {v}' for k, v in recipe['versions'].items())}",
        "",
        "Load: `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), this_folder)`, or merge:",
        "`safety-bench align --merge --base BASE --adapter THIS_FOLDER --out FULL_MODEL_DIR`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def merge_adapter(base: str | Path, adapter: str | Path, out: str | Path, dtype: str = "float32") -> Path:
    """Fold a LoRA adapter into the base weights and write a full HF folder (same parameter names and
    shapes as the base, tokenizer included) atomically."""
    base_dir, _ = resolve_model_dir(base)
    model, tokenizer = load_model(base_dir, adapter=adapter, device="cpu", dtype=dtype, merge=True)
    with core.atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        core.write_json(tmp / "merged_from.json", {"base": str(base_dir),
                                                   "base_fingerprint": core.model_fingerprint(base_dir),
                                                   "adapter": str(adapter), "versions": software_versions()})
    return Path(out)
