"""Instruction templates: wrap every instruction of a task in a fixed text (jailbreak landscapes, attack evals).

A template is plain text with one or more `{instruction}` placeholders, replaced literally (no
`str.format`, so a published template's own braces survive). `load_template` takes a bundled name (the
files in `safety_bench/prompts/templates/`, e.g. `roleplay`, written for this suite) or a path to a
user's file. Tasks apply it where their documents are built (task metadata `prompt_template`); the
judge still sees the bare instruction.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from safety_bench.validation import UsageError

PLACEHOLDER = "{instruction}"
_PACKAGE = "safety_bench.prompts"
_FOLDER = "templates"


def bundled_templates() -> list[str]:
    """Names of the templates shipped with the suite."""
    folder = resources.files(_PACKAGE).joinpath(_FOLDER)
    return sorted(f.name[:-4] for f in folder.iterdir() if f.name.endswith(".txt"))


def load_template(name_or_path: str) -> str:
    """A template's text, by bundled name or file path; it must contain `{instruction}`."""
    bundled = resources.files(_PACKAGE).joinpath(_FOLDER, f"{name_or_path}.txt")
    if "/" not in name_or_path and "\\" not in name_or_path and bundled.is_file():
        text = bundled.read_text(encoding="utf-8")
    elif Path(name_or_path).is_file():
        text = Path(name_or_path).read_text(encoding="utf-8")
    else:
        raise UsageError("--prompt-template", name_or_path, "neither a bundled template nor a file",
                         [*bundled_templates(), "a path to a text file"])
    if PLACEHOLDER not in text:
        raise UsageError("--prompt-template", name_or_path, f"the text has no {PLACEHOLDER} placeholder")
    return text.rstrip("\n")


def apply_template(template: str, instruction: str) -> str:
    """The instruction wrapped in the template (every placeholder replaced)."""
    return template.replace(PLACEHOLDER, instruction)


def template_hash(template: str) -> str:
    """sha256 of a template's text: recorded so an edited file is a different configuration."""
    return hashlib.sha256(template.encode("utf-8")).hexdigest()
