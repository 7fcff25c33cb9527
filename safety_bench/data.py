"""Prompt sources: HEx-PHI (hub or local folder), the bundled sample set, AdvBench, benign sets.

Every source yields plain dicts with the three contract fields `id` (stable across runs), `category`
(a slug from `categories.py`, or `benign`) and `instruction`. One setting selects the harmful source:
the lm-eval `--metadata '{"data": ...}'` key, else the `SAFETY_BENCH_DATA` environment variable, else
`hexphi`. A value is `hexphi`, `sample`, or a local folder in HEx-PHI's layout (`category_N.csv`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

from safety_bench.categories import BENIGN, BY_NUMBER, CATEGORIES, SLUGS
from safety_bench.settings import SETTINGS, resolve
from safety_bench.validation import UserError

Prompt = dict[str, str]

HEXPHI_REPO = "LLM-Tuning-Safety/HEx-PHI"
ADVBENCH_REPO = "walledai/AdvBench"
ADVBENCH_SIZE = 80  # the landscape paper's subset: the first 80 behaviours
ADVBENCH_FULL_SIZE = 520  # AdvBench's harmful behaviours in all (the fine-tuning paper's keyword-ASR set)
HEXPHI_PER_CATEGORY = 30  # HEx-PHI: 11 categories of 30 instructions (330; the public release lacks category 2)
DATA_ENV = SETTINGS["data"].env
BENIGN_ENV = SETTINGS["benign"].env
ADVBENCH_ENV = SETTINGS["advbench"].env
XSTEST_REPO = "Paul/XSTest"
XSTEST_ENV = SETTINGS["xstest"].env
XSTEST_COLUMNS = ("id", "prompt", "type", "label", "focus", "note")
DEFAULT_SOURCE = str(SETTINGS["data"].default)
MINI_PER_CATEGORY = 8


class DataSourceError(UserError, RuntimeError):
    """A prompt source could not be read; the message says what to do about it."""


def resolve_source(metadata: Mapping[str, object] | None = None, key: str = "data") -> str:
    """The prompt source from lm-eval metadata, then the environment, then the default (settings.py)."""
    return str(resolve(key, (metadata or {}).get(key)))


# ---------------------------------------------------------------- bundled sample set

def _bundled_jsonl(name: str) -> list[Prompt]:
    text = resources.files("safety_bench.prompts").joinpath(name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def sample_prompts() -> list[Prompt]:
    """The suite's own 8 short, non-operational requests per category (88 in all)."""
    return _bundled_jsonl("sample_harmful.jsonl")


def bundled_benign_prompts() -> list[Prompt]:
    """40 harmless requests (some with alarming words) for measuring over-refusal."""
    return _bundled_jsonl("sample_benign.jsonl")


# ---------------------------------------------------------------- HEx-PHI

def _read_category_csv(text: str, number: int, source_name: str) -> list[Prompt]:
    slug = BY_NUMBER[number].slug
    rows = [row for row in csv.reader(io.StringIO(text)) if row and row[0].strip()]
    return [
        {"id": f"{source_name}-c{number:02d}-{i:03d}", "category": slug, "instruction": row[0].strip()}
        for i, row in enumerate(rows, 1)
    ]


def hexphi_local(folder: str | os.PathLike[str]) -> list[Prompt]:
    """Read a folder in HEx-PHI's layout: `category_N.csv`, one instruction per row, no header."""
    root = Path(folder)
    if not root.is_dir():
        raise DataSourceError(
            f"prompt folder {str(root)!r} does not exist. Give a folder holding HEx-PHI's "
            "category_1.csv ... category_11.csv, or use data=sample for the bundled prompts."
        )
    prompts: list[Prompt] = []
    for number in BY_NUMBER:
        path = root / f"category_{number}.csv"
        if path.exists():
            prompts += _read_category_csv(path.read_text(encoding="utf-8"), number, "hexphi")
    if not prompts:
        raise DataSourceError(
            f"no category_N.csv files with instructions in {str(root)!r} (HEx-PHI's layout: "
            "category_1.csv ... category_11.csv, one instruction per row, no header)."
        )
    return prompts


def _hub_help(reason: str) -> str:
    return (
        f"cannot read HEx-PHI from the Hugging Face hub ({reason}). HEx-PHI is gated: accept its terms at "
        f"https://huggingface.co/datasets/{HEXPHI_REPO} and set HF_TOKEN; or point at a local copy, or use "
        f"the bundled prompts (sample): `--data /path/to/HEx-PHI` or `--data sample` for safety-bench "
        f"landscape, `--metadata '{{\"data\": \"sample\"}}'` for safety-bench eval and lm_eval, or "
        f"{DATA_ENV}=sample for either."
    )


def hexphi_hub(revision: str | None = None) -> list[Prompt]:
    """Download HEx-PHI's category files from the hub (gated; token from the environment)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    prompts: list[Prompt] = []
    for number in BY_NUMBER:
        try:
            path = hf_hub_download(HEXPHI_REPO, f"category_{number}.csv", repo_type="dataset",
                                   revision=revision)
        except GatedRepoError:
            raise DataSourceError(_hub_help("access to the gated dataset is missing")) from None
        except RepositoryNotFoundError:
            raise DataSourceError(_hub_help("the dataset was not found or the token lacks access")) from None
        except LocalEntryNotFoundError:  # (a subclass of EntryNotFoundError: test it first)
            raise DataSourceError(_hub_help("the hub cannot be reached and no cached copy exists")) from None
        except EntryNotFoundError:
            continue  # a withdrawn category (category 2 in the public release)
        except OSError as exc:  # connection errors and HTTP errors surface as OSError subclasses
            raise DataSourceError(_hub_help(f"{type(exc).__name__}: {exc}".splitlines()[0][:200])) from None
        prompts += _read_category_csv(Path(path).read_text(encoding="utf-8"), number, "hexphi")
    if not prompts:
        raise DataSourceError(_hub_help("the dataset holds no category_N.csv files"))
    return prompts


def harmful_prompts(source: str = DEFAULT_SOURCE) -> list[Prompt]:
    """All harmful prompts of a source: `hexphi[@revision]`, `sample`, or a local folder."""
    if source == "sample":
        return sample_prompts()
    if source == "hexphi" or source.startswith("hexphi@"):
        return hexphi_hub(source.partition("@")[2] or None)
    return hexphi_local(source)


def categories_present(prompts: Iterable[Prompt]) -> list[str]:
    seen = {p["category"] for p in prompts}
    return [slug for slug in SLUGS if slug in seen]


def stable_order_key(prompt_id: str) -> str:
    """A fixed pseudo-random order by id, so subsets never depend on file order or Python's hash seed."""
    return hashlib.sha256(prompt_id.encode("utf-8")).hexdigest()


def mini_subset(prompts: Iterable[Prompt], per_category: int = MINI_PER_CATEGORY) -> list[Prompt]:
    """A stratified subset: min(per_category, available) prompts per category, chosen by stable id."""
    by_category: dict[str, list[Prompt]] = {}
    for p in prompts:
        by_category.setdefault(p["category"], []).append(p)
    chosen: list[Prompt] = []
    for slug in SLUGS:
        group = sorted(by_category.get(slug, []), key=lambda p: stable_order_key(p["id"]))
        chosen += sorted(group[:per_category], key=lambda p: p["id"])
    return chosen


# ---------------------------------------------------------------- AdvBench

def advbench_prompts(source: str = "hub", limit: int | None = ADVBENCH_SIZE) -> list[Prompt]:
    """AdvBench's first `limit` harmful behaviours (80: the landscape paper's set; None: all 520), from the
    hub or a CSV.

    A local CSV needs a `goal` (AdvBench's own layout) or `prompt` column.
    """
    if source in ("hub", "advbench"):
        rows = _advbench_hub()
    else:
        path = Path(source)
        if not path.is_file():
            raise DataSourceError(f"AdvBench CSV {source!r} does not exist (expected harmful_behaviors.csv "
                                  "with a 'goal' column).")
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            column = next((c for c in ("goal", "prompt") if c in (reader.fieldnames or [])), None)
            if column is None:
                raise DataSourceError(f"{source}: no 'goal' or 'prompt' column (found {reader.fieldnames}).")
            rows = [r[column] for r in reader]
    rows = [r.strip() for r in rows if r and r.strip()][:limit]
    return [{"id": f"advbench-{i:03d}", "category": "advbench", "instruction": r} for i, r in enumerate(rows, 1)]


def _advbench_hub() -> list[str]:
    try:
        import datasets

        ds = datasets.load_dataset(ADVBENCH_REPO, split="train")
    except Exception as exc:  # datasets raises many types for offline/missing
        raise DataSourceError(
            f"cannot load AdvBench from the hub ({type(exc).__name__}). Point at a local copy of "
            f"harmful_behaviors.csv with --metadata '{{\"advbench\": \"/path/harmful_behaviors.csv\"}}' "
            f"or {ADVBENCH_ENV}=/path/harmful_behaviors.csv."
        ) from None
    column = "prompt" if "prompt" in ds.column_names else "goal"
    return list(ds[column])


# ---------------------------------------------------------------- benign (over-refusal)

def benign_prompts(source: str = "sample") -> list[Prompt]:
    """Safe prompts for over-refusal: the bundled 40, or a local JSONL/CSV with an instruction column."""
    if source in ("sample", "bundled"):
        return bundled_benign_prompts()
    path = Path(source)
    if not path.is_file():
        raise DataSourceError(f"benign prompt file {source!r} does not exist (JSONL or CSV with an "
                              "'instruction' or 'prompt' field).")
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    prompts = []
    for i, row in enumerate(rows, 1):
        text = row.get("instruction") or row.get("prompt")
        if not text:
            raise DataSourceError(f"{source}: row {i} has no 'instruction' or 'prompt' field.")
        prompts.append({"id": str(row.get("id") or f"benign-{i:04d}"), "category": BENIGN,
                        "instruction": str(text)})
    return prompts


# ---------------------------------------------------------------- XSTest (over-refusal, safe vs unsafe)

def xstest_prompts(source: str = "hub", label: str = "safe") -> list[Prompt]:
    """XSTest's prompts with `label` (`safe`: the safe prompts that sound unsafe; `unsafe`: the contrasts),
    from the hub (`Paul/XSTest`) or a local CSV in its public layout (columns id,prompt,type,label,focus,note).

    `category` is XSTest's prompt type (e.g. `homonyms`, `contrast_homonyms`)."""
    if label not in ("safe", "unsafe"):
        raise ValueError(f"XSTest label must be safe or unsafe, not {label!r}")
    rows = _xstest_hub() if source in ("hub", "xstest") else _xstest_csv(source)
    prompts = []
    for i, row in enumerate(rows, 1):
        if str(row.get("label", "")).strip().lower() != label:
            continue
        text = str(row.get("prompt") or "").strip()
        if not text:
            continue
        prompts.append({"id": f"xstest-{str(row.get('id') or i).strip()}",
                        "category": str(row.get("type") or "uncategorised").strip(), "instruction": text})
    if not prompts:
        raise DataSourceError(f"XSTest source {source!r} holds no prompts labelled {label!r} "
                              f"(column 'label' must be safe or unsafe).")
    return prompts


def _xstest_help(reason: str) -> str:
    return (f"cannot read XSTest from the Hugging Face hub ({reason}). Point at a local copy of its CSV "
            f"(columns {','.join(XSTEST_COLUMNS)}) with --metadata '{{\"xstest\": \"/path/xstest_prompts.csv\"}}' "
            f"or {XSTEST_ENV}=/path/xstest_prompts.csv.")


def _xstest_hub() -> list[dict[str, str]]:
    try:
        import datasets

        ds = datasets.load_dataset(XSTEST_REPO, split="train")
    except Exception as exc:  # datasets raises many types for offline / missing / no access
        raise DataSourceError(_xstest_help(f"{type(exc).__name__}: {exc}".splitlines()[0][:200])) from None
    missing = [c for c in ("prompt", "label") if c not in ds.column_names]
    if missing:
        raise DataSourceError(_xstest_help(f"the dataset lacks column(s) {', '.join(missing)}"))
    return [dict(r) for r in ds]


def _xstest_csv(source: str) -> list[dict[str, str]]:
    path = Path(source)
    if not path.is_file():
        raise DataSourceError(f"XSTest CSV {source!r} does not exist (expected XSTest's public layout, columns "
                              f"{','.join(XSTEST_COLUMNS)}; or use xstest=hub).")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("prompt", "type", "label") if c not in (reader.fieldnames or [])]
        if missing:
            raise DataSourceError(f"{source}: not in XSTest's layout, no column(s) {', '.join(missing)} "
                                  f"(found {reader.fieldnames}; expected {','.join(XSTEST_COLUMNS)}).")
        return list(reader)


# ---------------------------------------------------------------- capability (bundled, no hub)

def capability_items(name: str) -> list[dict[str, object]]:
    """The bundled capability items: `arithmetic` (question, answer: exact match) or `facts` (question,
    choices, answer index: multiple choice), written for this suite."""
    if name not in ("arithmetic", "facts"):
        raise ValueError(f"no bundled capability items {name!r} (valid: arithmetic, facts)")
    return _bundled_jsonl(f"capability_{name}.jsonl")  # type: ignore[return-value]


def known_prompt_count(task: str, source: str, per_category: int = MINI_PER_CATEGORY) -> int | None:
    """The number of prompts a suite task would answer, from its source's published size, without reading
    the source (for plans made where the source cannot be reached). None when unknown (a local folder)."""
    if task == "safety_advbench80":
        return ADVBENCH_SIZE
    if task == "safety_advbench":
        return ADVBENCH_FULL_SIZE
    if task == "safety_benign":
        return len(bundled_benign_prompts())
    if source == "sample":
        sizes: dict[str, int] = {}
        for p in sample_prompts():
            sizes[p["category"]] = sizes.get(p["category"], 0) + 1
    elif source == "hexphi" or source.startswith("hexphi@"):
        sizes = {c.slug: HEXPHI_PER_CATEGORY for c in CATEGORIES}
    else:
        return None
    if task == "safety_landscape_mini":
        return sum(min(per_category, n) for n in sizes.values())
    if task == "safety_landscape":
        return sum(sizes.values())
    if task == "safety_landscape_public":
        return sum(n for slug, n in sizes.items() if slug != "child_abuse")
    if task.startswith("safety_landscape_") and task[len("safety_landscape_"):] in sizes:
        return sizes[task[len("safety_landscape_"):]]
    return None


def prompt_set_hash(prompts: Iterable[Prompt]) -> str:
    """sha256 over (id, category, instruction): two runs on the same prompts share it."""
    h = hashlib.sha256()
    for p in sorted(prompts, key=lambda p: p["id"]):
        h.update(json.dumps([p["id"], p["category"], p["instruction"]]).encode("utf-8"))
    return h.hexdigest()


__all__ = ["CATEGORIES", "DataSourceError", "advbench_prompts", "benign_prompts", "capability_items",
           "categories_present",
           "harmful_prompts", "hexphi_hub", "hexphi_local", "mini_subset", "prompt_set_hash",
           "resolve_source", "sample_prompts", "xstest_prompts"]


__all__ = ["CATEGORIES", "DataSourceError", "advbench_prompts", "benign_prompts", "categories_present",
           "harmful_prompts", "hexphi_hub", "known_prompt_count", "hexphi_local", "mini_subset", "prompt_set_hash",
           "resolve_source", "sample_prompts"]
