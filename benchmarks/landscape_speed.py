"""Landscape generation speed: this suite's in-place way against the reference approach, side by side.

(a) suite: the weights stay on the device; each grid point moves them in place with the `Perturber`
    (directions regenerated on the device or cached there), generates ALL prompts of the point in one
    greedy batch (static KV cache where transformers supports it), then restores bit-exactly.
(b) reference (the landscape paper's code path): an fp32 state dict kept on the CPU, the point's weights
    computed on the CPU (θ + α·d) and reloaded onto the device with `load_state_dict` at every point,
    greedy generation at batch size 4. It is slow, so only `--reference-points` points are timed and
    the full landscape's time is extrapolated from them (labelled as such).

Both generate the same prompts with the same forced number of new tokens (min_new_tokens =
max_new_tokens: random weights would otherwise stop at different lengths). The physical limit is the
memory traffic of decoding: per step every weight byte and the KV cache written so far are read once;
bytes / bandwidth is the fastest possible decode, and achieved/limit says how close we get.

    python benchmarks/landscape_speed.py --model smollm2 --device cpu --points 2 --prompts 8 --new-tokens 16
    python benchmarks/landscape_speed.py --model llama7b-random --device cuda --dtype bfloat16 \\
        --points 3 --prompts 80 --new-tokens 512 --reference-points 1   # one H100/H200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch

BANDWIDTH_GBS = {"H100": 3350.0, "H200": 4800.0}  # HBM3 / HBM3e, vendor figures (SXM)
FULL_1D_POINTS = 21
LLAMA_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                tie_word_embeddings=False)


# ---------------------------------------------------------------------- set-up

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_model(name: str, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any]:
    """(model, tokenizer or None). `llama7b-random` is built from a config: no weights to download."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if name == "llama7b-random":
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                torch.manual_seed(0)
                model = LlamaForCausalLM(LlamaConfig(**LLAMA_7B))
        finally:
            torch.set_default_dtype(previous)
        return model.eval(), None
    if name == "smollm2":
        from safety_bench.models import smollm2_dir

        name = str(smollm2_dir())
    model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype).to(device).eval()
    tok = AutoTokenizer.from_pretrained(name)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def build_prompts(tok: Any, n: int, vocab: int, device: torch.device, length: int = 64) -> dict[str, torch.Tensor]:
    """The bundled sample prompts through the chat template, or fixed random ids without a tokenizer."""
    if tok is None:
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(100, vocab, (n, length), generator=gen)
        return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}
    from safety_bench.data import sample_prompts

    prompts = sample_prompts()
    texts = [tok.apply_chat_template([{"role": "user", "content": prompts[i % len(prompts)]["instruction"]}],
                                     tokenize=False, add_generation_prompt=True) for i in range(n)]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    return {k: v.to(device) for k, v in enc.items()}


def measure_bandwidth(device: torch.device, mib: int = 512, repeats: int = 5) -> float:
    """Rough copy bandwidth in GB/s (bytes read + written over time) with a big tensor copy."""
    src = torch.empty(mib * (1 << 20) // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        dst.copy_(src)
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * src.numel() * 4 / best / 1e9


def default_bandwidth(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, gbs in BANDWIDTH_GBS.items():
            if key in name:
                return gbs, f"{name}: vendor figure {gbs:.0f} GB/s"
        return measure_bandwidth(device), f"{name}: measured copy bandwidth"
    return measure_bandwidth(device), "CPU: measured copy bandwidth (512 MiB tensor copy)"


# ---------------------------------------------------------------------- generation

@dataclass
class Gen:
    prompts: dict[str, torch.Tensor]
    new_tokens: int
    cache: str

    def run(self, model: Any, batch_size: int | None = None, cache: str | None = None) -> int:
        """Greedy, forced length; returns the number of generated tokens."""
        ids, mask = self.prompts["input_ids"], self.prompts["attention_mask"]
        step = batch_size or ids.shape[0]
        kwargs: dict[str, Any] = dict(do_sample=False, max_new_tokens=self.new_tokens, min_new_tokens=self.new_tokens)
        impl = cache if cache is not None else self.cache
        if impl == "static":
            kwargs["cache_implementation"] = "static"
        total = 0
        with torch.inference_mode():
            for a in range(0, ids.shape[0], step):
                out = model.generate(input_ids=ids[a:a + step], attention_mask=mask[a:a + step],
                                     pad_token_id=model.config.pad_token_id or 0, **kwargs)
                total += (out.shape[1] - ids.shape[1]) * out.shape[0]
        return total


def decode_limit_s(model: Any, prompts: dict[str, torch.Tensor], new_tokens: int, dtype: torch.dtype,
                   bandwidth_gbs: float) -> tuple[float, dict[str, float]]:
    """Fastest possible decode of one point (all prompts in one batch): Σ_steps (weights + KV) / bandwidth."""
    cfg = model.config
    weight_bytes = 0
    embed = model.get_input_embeddings().weight
    for p in model.parameters():  # a tied embedding/head is one Parameter, listed once
        if p is embed and not cfg.tie_word_embeddings:
            continue  # an untied input embedding is only gathered (a few rows per step)
        weight_bytes += p.numel() * p.element_size()
    heads = cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    item = torch.tensor([], dtype=dtype).element_size()
    kv_per_token = 2 * cfg.num_hidden_layers * kv_heads * head_dim * item
    batch, prompt_len = prompts["input_ids"].shape
    kv_bytes = sum(batch * (prompt_len + s) * kv_per_token for s in range(new_tokens))
    total = weight_bytes * new_tokens + kv_bytes
    return total / (bandwidth_gbs * 1e9), {"weight_bytes_per_step": weight_bytes,
                                           "kv_bytes_per_step_mean": kv_bytes / new_tokens}


# ---------------------------------------------------------------------- the two ways

def run_suite(model: Any, gen: Gen, alphas: list[float], device: torch.device) -> dict[str, Any]:
    from safety_bench.landscape.perturb import Perturber

    t = time.perf_counter()
    pert = Perturber(model, seeds=[0])
    pert.warm([0])
    sync(device)
    setup_s = time.perf_counter() - t
    Gen(gen.prompts, min(4, gen.new_tokens), gen.cache).run(model)  # warm-up (allocations, kernels, graphs)
    rows = []
    for alpha in alphas:
        t0 = time.perf_counter()
        pert.apply({0: alpha})
        sync(device)
        t1 = time.perf_counter()
        tokens = gen.run(model)
        sync(device)
        t2 = time.perf_counter()
        pert.restore()
        sync(device)
        t3 = time.perf_counter()
        rows.append({"alpha": alpha, "perturb_s": t1 - t0, "generate_s": t2 - t1, "restore_s": t3 - t2,
                     "point_s": t3 - t0, "tokens": tokens})
    assert pert.max_abs_diff() == 0.0
    return {"setup_s (original copy + direction, once)": setup_s, "points": rows}


def run_reference(model: Any, gen: Gen, alphas: list[float], device: torch.device, batch_size: int,
                  group_bytes: int = 1 << 30) -> dict[str, Any]:
    from safety_bench.landscape.directions import Selection, direction_for, unique_parameters

    t = time.perf_counter()
    selection = Selection()  # the same tensors as the suite's (norms excluded); tied weights once
    state = {n: p.detach().to("cpu", torch.float32, copy=True) for n, p in unique_parameters(model)}
    direction = {n: direction_for(0, n, v) if selection.selects(n, v) else None for n, v in state.items()}
    setup_s = time.perf_counter() - t
    rows = []
    for alpha in alphas:
        t0 = time.perf_counter()
        group: dict[str, torch.Tensor] = {}
        size = 0
        for k, v in state.items():  # θ + α·d on the CPU, reloaded in ~1 GiB groups (bounded host memory)
            group[k] = v + alpha * direction[k] if direction[k] is not None else v
            size += v.numel() * 4
            if size >= group_bytes:
                model.load_state_dict(group, strict=False)
                group, size = {}, 0
        if group:
            model.load_state_dict(group, strict=False)
        sync(device)
        t1 = time.perf_counter()
        tokens = gen.run(model, batch_size=batch_size, cache="dynamic")
        sync(device)
        t2 = time.perf_counter()
        rows.append({"alpha": alpha, "load_s": t1 - t0, "generate_s": t2 - t1, "point_s": t2 - t0, "tokens": tokens})
    model.load_state_dict(state, strict=False)  # back to the original for whoever runs next
    return {"setup_s (CPU fp32 copy + direction, once)": setup_s, "points": rows}


def summarise(rows: list[dict[str, Any]], move_keys: tuple[str, ...]) -> dict[str, float]:
    n = len(rows)
    point = sum(r["point_s"] for r in rows) / n
    move = sum(sum(r[k] for k in move_keys) for r in rows) / n
    gen = sum(r["generate_s"] for r in rows) / n
    tokens = sum(r["tokens"] for r in rows) / n
    return {"seconds_per_point": point, "move_weights_s_per_point": move, "move_weights_share": move / point,
            "generate_s_per_point": gen, "tokens_per_s": tokens / gen}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="smollm2 | llama7b-random | a local HF folder")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on a GPU, float32 on the CPU")
    parser.add_argument("--points", type=int, default=2, help="grid points timed for the suite's way")
    parser.add_argument("--reference-points", type=int, default=1, help="grid points timed for the reference")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--reference-batch-size", type=int, default=4)
    parser.add_argument("--cache", choices=["auto", "static", "dynamic"], default="auto",
                        help="KV cache of the suite's generation; auto: static on a GPU (no reallocation, "
                             "CUDA-graph friendly), dynamic on the CPU (where static measured slower)")
    parser.add_argument("--bandwidth-gbs", type=float, default=None,
                        help="device memory bandwidth; default: H100 3350, H200 4800, CPU measured")
    parser.add_argument("--json", default=None, help="also write the report to this file")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    torch.manual_seed(0)

    t = time.perf_counter()
    model, tok = load_model(args.model, device, dtype)
    load_s = time.perf_counter() - t
    prompts = build_prompts(tok, args.prompts, model.config.vocab_size, device)
    cache = args.cache if args.cache != "auto" else ("static" if device.type == "cuda" else "dynamic")
    gen = Gen(prompts, args.new_tokens, cache)
    alphas = [round(0.05 * (i + 1), 4) for i in range(max(args.points, args.reference_points))]

    suite = run_suite(model, gen, alphas[:args.points], device)
    reference = run_reference(model, gen, alphas[:args.reference_points], device, args.reference_batch_size)
    s = summarise(suite["points"], ("perturb_s", "restore_s"))
    r = summarise(reference["points"], ("load_s",))
    if args.bandwidth_gbs:
        bandwidth, bw_source = args.bandwidth_gbs, "given (--bandwidth-gbs)"
    else:
        bandwidth, bw_source = default_bandwidth(device)
    limit_s, traffic = decode_limit_s(model, prompts, args.new_tokens, dtype, bandwidth)

    from importlib.metadata import version

    report = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"CPU, {os.cpu_count()} cores ({platform.processor() or platform.machine()})"),
        "load_average_1m": os.getloadavg()[0],
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": version("transformers")},
        "settings": {"model": args.model, "dtype": str(dtype).replace("torch.", ""), "prompts": args.prompts,
                     "prompt_tokens_padded": int(prompts["input_ids"].shape[1]), "new_tokens (forced)": args.new_tokens,
                     "suite_points": args.points, "reference_points": args.reference_points,
                     "suite_batch": args.prompts, "reference_batch": args.reference_batch_size,
                     "suite_cache": cache, "model_load_s": load_s},
        "suite": {**s, "setup_s": suite["setup_s (original copy + direction, once)"], "points": suite["points"]},
        "reference (timed)": {**r, "setup_s": reference["setup_s (CPU fp32 copy + direction, once)"],
                              "points": reference["points"]},
        "ratio_reference_over_suite (seconds per point)": r["seconds_per_point"] / s["seconds_per_point"],
        f"extrapolated_{FULL_1D_POINTS}_points_s": {
            "suite": FULL_1D_POINTS * s["seconds_per_point"],
            "reference (extrapolated from timed points)": FULL_1D_POINTS * r["seconds_per_point"]},
        "physical_limit": {"bandwidth_GBs": bandwidth, "bandwidth_source": bw_source, **traffic,
                           "decode_limit_s_per_point": limit_s,
                           "suite_generate_over_limit (x slower than the limit)": s["generate_s_per_point"] / limit_s,
                           "achieved_over_limit": limit_s / s["generate_s_per_point"]},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
