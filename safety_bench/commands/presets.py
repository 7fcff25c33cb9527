"""`safety-bench presets`: list the named settings (`--preset NAME`) of every command."""

from __future__ import annotations

import argparse


def _cmd_presets(args: argparse.Namespace) -> int:
    from safety_bench.orchestration.presets import load_presets

    presets = load_presets()
    for preset in presets.values():
        if args.kind and preset.kind != args.kind:
            continue
        print(f"{preset.name:20s} {preset.kind:10s} {preset.description}")
        if args.verbose_settings:
            for key, value in preset.settings.items():
                print(f"    {key} = {value!r}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `safety-bench presets`."""
    from safety_bench.orchestration.presets import KINDS

    p = sub.add_parser("presets", help="list the presets (--preset NAME) of landscape, eval and attack",
                       description="Each preset is a YAML file of settings (presets/ in the checkout); "
                       "`--preset NAME` applies one, and any flag you give explicitly wins.")
    p.add_argument("--kind", choices=KINDS, help="only presets of this kind")
    p.add_argument("--settings", dest="verbose_settings", action="store_true", help="print every setting")
    p.set_defaults(func=_cmd_presets)
