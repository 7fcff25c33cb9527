"""`safety-bench eval`'s own options, translated into lm-eval arguments before lm-eval sees them.

- `--preset NAME` (an `eval` preset from the registry, e.g. `qi2023`): each setting becomes the lm-eval
  argument it names unless the user gave that argument: task settings (`data`, `judge`,
  `system_prompt`, `prompt_template`, ...) join `--metadata`, generation settings (`max_gen_toks`,
  `do_sample`, `temperature`) join `--gen_kwargs`, `apply_chat_template: true` adds the flag, `tasks`
  and any other key become `--<key> VALUE`. Keys the user set win, one by one.
- `--no-chat-template`: plain text completion for base models (task metadata `prompt_format:
  completion`, the documented `Request: ...\\nResponse:` format), refused together with
  `--apply_chat_template`.
- `--prompt-template NAME|FILE`: task metadata `prompt_template` (wraps every instruction).
"""

from __future__ import annotations

import json
from typing import Any

from safety_bench.settings import TASK_KEYS
from safety_bench.validation import UsageError

GEN_KEYS = ("max_gen_toks", "do_sample", "temperature", "top_p")
METADATA_KEYS = (*TASK_KEYS, "per_category", "prompt_format")
FLAG_KEYS = ("apply_chat_template", "log_samples")


def _find(args: list[str], flag: str) -> int | None:
    for i, a in enumerate(args):
        if a == flag or a.startswith(flag + "="):
            return i
    return None


def _pop(args: list[str], flag: str, takes_value: bool = True) -> str | bool | None:
    i = _find(args, flag)
    if i is None:
        return None
    if not takes_value:
        del args[i]
        return True
    if "=" in args[i]:
        value = args[i].split("=", 1)[1]
        del args[i]
        return value
    if i + 1 >= len(args):
        raise UsageError(flag, "", "needs a value")
    value = args[i + 1]
    del args[i:i + 2]
    return value


def _parse_gen_kwargs(text: str) -> dict[str, str]:
    text = text.strip()
    if text.startswith("{"):
        return {k: str(v) for k, v in json.loads(text).items()}
    pairs = [p for p in text.split(",") if p.strip()]
    return dict(p.split("=", 1) for p in pairs if "=" in p)


def _lm_eval_value(value: Any) -> str:
    return str(value) if not isinstance(value, bool) else ("True" if value else "False")


def translate(argv: list[str]) -> tuple[list[str], list[str]]:
    """argv with this suite's eval options turned into lm-eval arguments; and the lines to print."""
    args = list(argv)
    preset_name = _pop(args, "--preset")
    no_chat = bool(_pop(args, "--no-chat-template", takes_value=False))
    template = _pop(args, "--prompt-template")
    metadata_text = _pop(args, "--metadata")
    try:
        metadata: dict[str, Any] = json.loads(metadata_text) if metadata_text else {}
    except ValueError as exc:
        raise UsageError("--metadata", metadata_text, f"is not JSON ({exc})") from None
    if not isinstance(metadata, dict):
        raise UsageError("--metadata", metadata_text, "must be a JSON object")
    gen_text = _pop(args, "--gen_kwargs")
    gen = _parse_gen_kwargs(str(gen_text)) if gen_text else {}
    user_gen, user_meta = set(gen), set(metadata)
    lines: list[str] = []
    if template:
        from safety_bench.harness.prompt_templates import load_template

        load_template(str(template))
        metadata["prompt_template"] = template
        user_meta.add("prompt_template")
    if no_chat:
        if _find(args, "--apply_chat_template") is not None:
            raise UsageError("--no-chat-template", True, "contradicts --apply_chat_template (choose one)")
        metadata["prompt_format"] = "completion"
    if preset_name:
        from safety_bench.orchestration.presets import describe_settings, get_preset

        preset = get_preset(str(preset_name), "eval")
        overridden: dict[str, Any] = {}
        for key, value in preset.settings.items():
            if key in GEN_KEYS:
                if key in user_gen:
                    overridden[key] = gen[key]
                else:
                    gen[key] = _lm_eval_value(value)
            elif key in METADATA_KEYS:
                if key in user_meta:
                    overridden[key] = metadata[key]
                else:
                    metadata[key] = value
            elif key in FLAG_KEYS:
                given = _find(args, f"--{key}") is not None
                if key == "apply_chat_template" and no_chat:
                    overridden[key] = "--no-chat-template"
                elif given:
                    overridden[key] = f"--{key}"
                elif value:
                    args.append(f"--{key}")
            else:
                i = _find(args, f"--{key}")
                if i is not None:
                    overridden[key] = args[i].split("=", 1)[1] if "=" in args[i] else args[i + 1]
                else:
                    args += [f"--{key}", _lm_eval_value(value)]
        lines = describe_settings(preset, overridden)
    if metadata:
        args += ["--metadata", json.dumps(metadata)]
    if gen:
        args += ["--gen_kwargs", ",".join(f"{k}={v}" for k, v in gen.items())]
    return args, lines
