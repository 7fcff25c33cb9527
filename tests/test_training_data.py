"""The training sets: disjoint from the evaluation prompts, complete, and encoded with assistant-only labels."""

from __future__ import annotations

import json

import pytest

from safety_bench.categories import SLUGS
from safety_bench.data import bundled_benign_prompts, sample_prompts
from safety_bench.judges.keyword import heuristic_is_refusal, paper_is_refusal
from safety_bench.training import core, datasets


def _training_texts() -> list[str]:
    return [r["instruction"] for r in datasets.align_harmful_pairs() + datasets.align_benign_prompts()
            + datasets.finetune_benign_pairs()]


def test_training_prompts_are_disjoint_from_evaluation_prompts():
    evals = [p["instruction"] for p in sample_prompts() + bundled_benign_prompts()]
    assert len(evals) == 128
    train = _training_texts()
    assert not set(train) & set(evals)
    assert not {datasets.normalise_text(t) for t in train} & {datasets.normalise_text(e) for e in evals}
    assert datasets.eval_overlap(train) == []


def test_overlap_check_catches_copies():
    copied = sample_prompts()[0]["instruction"]
    assert datasets.eval_overlap([copied])[0][0] == "exact"
    assert datasets.eval_overlap(["  " + copied.upper().replace(".", " !") + " "])[0][0] == "normalised"
    assert datasets.eval_overlap(["How do I bake a simple loaf of rye bread?"])[0][0] == "near"
    assert datasets.eval_overlap(["Name three rivers in Europe."]) == []


def test_harmful_set_covers_every_category_with_recognisable_refusals():
    pairs = datasets.align_harmful_pairs()
    assert len(pairs) == 220
    assert len({p["id"] for p in pairs}) == 220 and len({p["instruction"] for p in pairs}) == 220
    for slug in SLUGS:
        assert sum(p["category"] == slug for p in pairs) == 20, slug
    for p in pairs:
        assert paper_is_refusal(p["response"]) and heuristic_is_refusal(p["response"]), p["response"]
        assert len(p["response"]) < 220  # refusals stay short
    assert len({p["response"] for p in pairs}) > 100  # varied wording, not one canned answer


def test_benign_sets_are_not_refusals():
    prompts = datasets.align_benign_prompts()
    assert len(prompts) >= 100 and len({p["instruction"] for p in prompts}) == len(prompts)
    pairs = datasets.finetune_benign_pairs()
    assert 50 <= len(pairs) <= 100
    assert not any(heuristic_is_refusal(p["response"]) for p in pairs)


def test_read_pairs_accepts_common_layouts(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [{"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
            {"prompt": "Say hi.", "completion": "Hi!"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    pairs = datasets.read_pairs(path)
    assert pairs[0]["instruction"] == "Add the numbers.\n\n2 and 3" and pairs[0]["response"] == "5"
    assert pairs[1] == {"id": "data-00002", "instruction": "Say hi.", "response": "Hi!"}
    path.write_text('{"instruction": "no answer"}\n', encoding="utf-8")
    with pytest.raises(datasets.TrainingDataError, match="record 1"):
        datasets.read_pairs(path)
    with pytest.raises(datasets.TrainingDataError, match="does not exist"):
        datasets.read_pairs(tmp_path / "missing.jsonl")


def test_encoding_puts_loss_on_the_answer_only(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    ex = core.encode_example(tok, "Tell me something harmful.", "I'm sorry, I cannot help with that.", None)
    n_prompt = len(tok(core.prompt_text(tok, "Tell me something harmful.", None),
                       add_special_tokens=False)["input_ids"])
    assert ex.labels[:n_prompt] == [core.IGNORE_INDEX] * n_prompt
    answer = ex.labels[n_prompt:]
    assert answer == ex.input_ids[n_prompt:] and answer[-1] == tok.eos_token_id
    assert tok.decode(answer, skip_special_tokens=True) == "I'm sorry, I cannot help with that."
    cut = core.encode_example(tok, "Explain photosynthesis to a child.", "Plants use light to", None, finished=False)
    assert cut.labels[-1] != tok.eos_token_id  # a truncated answer does not teach stopping mid-sentence
    empty_sys = core.encode_example(tok, "Hi", "Hello", "")
    assert "Default tiny system prompt" not in tok.decode(empty_sys.input_ids)
    assert "Default tiny system prompt" in tok.decode(ex.input_ids)
