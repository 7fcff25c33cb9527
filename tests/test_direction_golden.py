"""Golden values: the direction generator's actual numbers, pinned.

Every published landscape is a function of these numbers, so a change to the key string, the hash, the
Box–Muller order or the rescaling must fail a test, not pass silently. The values below were computed
with the generator as of commit 5c78b43 (before the HF and vLLM engines shared one generator) and are
checked in fresh processes with two different PYTHONHASHSEED values, so a use of Python's salted
`hash()` anywhere on the path would show up as a mismatch.

Integers (keys, hash outputs) must match exactly: they are the same on every device. Floats allow a
few ulps, the room DESIGN.md gives different libm/devices; any real change moves them by far more.

Run as a script, this file prints the computed values as JSON (what the subprocess tests read).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SEEDS = (0, 1234)
TENSORS = (("model.layers.0.self_attn.q_proj.weight", (64, 48)), ("model.embed_tokens.weight", (7, 5)))
THETA = 0.25  # every element of θ: ‖θ‖_F = 0.25·√n exactly, so the pin does not depend on a random θ

# (seed, name) -> pinned numbers, from the generator at commit 5c78b43 (see the module docstring)
GOLDEN: dict[tuple[int, str], dict[str, Any]] = {
    (0, "model.layers.0.self_attn.q_proj.weight"): {
        "keys": [1345646536, 1760029025, 2681545925, 2204369261],
        "hashes": [3043413068, 1264278312, 4081400579, 1022174970],
        "first": [0.20268167555332184, -0.06546813249588013, 0.03024645335972309, 0.4001832604408264],
        "last": -0.12616120278835297, "z_norm": 53.99739376103779, "d_norm": 13.856406459853902,
        "sum": -19.871941294235512,
    },
    (0, "model.embed_tokens.weight"): {
        "keys": [2773331368, 2306906847, 1387917970, 3368076508],
        "hashes": [3432958647, 3073801992, 2979741739, 3641144553],
        "first": [-0.05827010050415993, -0.15802504122257233, 0.11863131821155548, -0.16818799078464508],
        "last": 0.023010797798633575, "z_norm": 5.877934291098986, "d_norm": 1.4790199493475316,
        "sum": 0.7667258810251951,
    },
    (1234, "model.layers.0.self_attn.q_proj.weight"): {
        "keys": [3350640340, 1950150305, 4180723407, 1091137486],
        "hashes": [739364263, 3461737032, 752755126, 1254566271],
        "first": [0.21364842355251312, 0.4210367202758789, -0.04322025552392006, 0.15955530107021332],
        "last": -0.5946429967880249, "z_norm": 55.05246910840747, "d_norm": 13.856406463744412,
        "sum": -11.300144179549534,
    },
    (1234, "model.embed_tokens.weight"): {
        "keys": [1440309636, 2317132869, 1666941618, 846725049],
        "hashes": [787768121, 1306166210, 909404050, 1026345377],
        "first": [0.09679562598466873, 0.3948357105255127, 0.023595668375492096, 0.339758038520813],
        "last": 0.3768507242202759, "z_norm": 6.700564468429949, "d_norm": 1.4790199459800877,
        "sum": 0.7653331246692687,
    },
}
# relative tolerance per float field: fp32 values a few ulps; fp64 norms of fp64/fp32 values
REL_TOL = {"first": 1e-6, "last": 1e-6, "z_norm": 1e-12, "d_norm": 1e-9, "sum": 1e-6}
VALUE_FIELDS = ("first", "last", "z_norm", "d_norm", "sum")


def compute(device: str = "cpu") -> dict[str, dict[str, Any]]:
    """The pinned numbers as the generator gives them now on `device`, keyed "seed|name" (JSON-friendly)."""
    import torch

    from safety_bench.landscape import directions

    out: dict[str, dict[str, Any]] = {}
    for seed in SEEDS:
        for name, shape in TENSORS:
            keys = directions.tensor_keys(seed, name)
            pairs = torch.arange(2, dtype=torch.int64, device=device)
            hashes = (directions.hash32(pairs, keys[0], keys[1]).tolist()
                      + directions.hash32(pairs, keys[2], keys[3]).tolist())
            d = directions.direction_for(seed, name, torch.full(shape, THETA, device=device)).reshape(-1).cpu()
            z = directions.gaussian_chunk(keys, 0, d.numel(), device).cpu()
            out[f"{seed}|{name}"] = {
                "keys": list(keys), "hashes": hashes, "first": [float(x) for x in d[:4]], "last": float(d[-1]),
                "z_norm": math.sqrt(float(z.pow(2).sum())), "d_norm": float(d.double().norm()),
                "sum": float(d.double().sum()),
            }
    return out


def mismatches(got: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """(case, field) of every pinned number the computed values do not reproduce."""
    bad = []
    for (seed, name), want in GOLDEN.items():
        case = f"{seed}|{name}"
        have = got.get(case)
        if have is None:
            bad.append((case, "missing"))
            continue
        for field in ("keys", "hashes"):
            if have[field] != want[field]:
                bad.append((case, field))
        for field in VALUE_FIELDS:
            a, b = have[field], want[field]
            pairs = zip(a, b, strict=True) if isinstance(b, list) else [(a, b)]
            if not all(math.isclose(x, y, rel_tol=REL_TOL[field], abs_tol=1e-7) for x, y in pairs):
                bad.append((case, field))
    return bad


def _fresh_process(hash_seed: str) -> dict[str, Any]:
    """compute() in a new interpreter with this PYTHONHASHSEED (plus a hash() probe to prove it took)."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONHASHSEED": hash_seed,
           "PYTHONPATH": os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve())], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_golden_values_in_fresh_processes_with_different_hash_seeds():
    runs = {seed: _fresh_process(seed) for seed in ("0", "12345")}
    assert runs["0"]["probe"] != runs["12345"]["probe"]  # hash randomisation really differed
    for seed, run in runs.items():
        assert mismatches(run["values"]) == [], f"PYTHONHASHSEED={seed}"


def test_golden_values_in_this_process():
    assert mismatches(compute()) == []


def test_golden_values_on_a_cuda_device():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the same numbers on a GPU need one")
    assert mismatches(compute("cuda")) == []


def _rotated_keys(original):
    def keys(seed: int, name: str) -> tuple[int, int, int, int]:
        a, b, c, d = original(seed, name)
        return c, d, a, b  # the uniforms of u1 and u2 swapped: a Box–Muller order change

    return keys


@pytest.mark.parametrize("change", ["key string", "box-muller order"])
def test_the_golden_check_fails_when_the_generator_changes(monkeypatch, change):
    from safety_bench.landscape import directions

    if change == "key string":
        monkeypatch.setattr(directions, "KEY_DOMAIN", "safety-bench/direction/v2")
    else:
        monkeypatch.setattr(directions, "tensor_keys", _rotated_keys(directions.tensor_keys))
    bad = mismatches(compute())
    # not only the keys: the direction values themselves move, for every pinned tensor
    for seed, name in GOLDEN:
        assert (f"{seed}|{name}", "first") in bad and (f"{seed}|{name}", "sum") in bad


if __name__ == "__main__":
    print(json.dumps({"probe": hash("safety-bench"), "values": compute()}))
