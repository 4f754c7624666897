"""List the shipped agents, or add one from a finished run.

    python -m agents.pretrained                      (the catalog: name, kind, figures, command)
    python -m agents.pretrained add NAME --run DIR --command "python -m agents.bc ..." [--figures JSON]

``add`` copies the run's kept checkpoint (``policy.pt`` or ``model.pt``) into this package as
``NAME.pt`` and records it in ``catalog.json`` with its sha256, the command that trained it and
its held-out figures (``--figures``, a JSON object; default the run's own test figures).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

from agents.pretrained import CATALOG, HERE, catalog


def run_figures(run: Path) -> dict:
    """The held-out figures a run's ``metrics.json`` reports (its test rows)."""
    metrics = json.loads((run / "metrics.json").read_text())
    keep = ("test", "test_single_view", "test_mix", "comparison", "foraging", "tests")
    return {key: metrics[key] for key in keep if metrics.get(key) is not None}


def add(name: str, run: Path, command: str, figures: dict | None) -> Path:
    found = [(k, f) for k, f in (("policy", "policy.pt"), ("puzzle", "model.pt")) if (run / f).is_file()]
    if not found:
        raise ValueError(f"{run}: neither policy.pt nor model.pt there (give a finished run directory)")
    kind, file = found[0]
    target = HERE / f"{name}.pt"
    shutil.copyfile(run / file, target)
    entries = dict(catalog())
    entries[name] = {
        "file": target.name, "kind": kind, "command": command, "figures": figures or run_figures(run),
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(), "bytes": target.stat().st_size,
    }  # fmt: skip
    CATALOG.write_text(json.dumps(dict(sorted(entries.items())), indent=1) + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action")
    adder = sub.add_parser("add", help="ship a finished run's checkpoint under NAME")
    adder.add_argument("name")
    adder.add_argument("--run", required=True, type=Path)
    adder.add_argument("--command", required=True, help="the command that trained it (shown to users)")
    adder.add_argument("--figures", default=None, help="held-out figures as a JSON object")
    args = parser.parse_args(argv)
    if args.action == "add":
        try:
            figures = json.loads(args.figures) if args.figures else None
            print(add(args.name, args.run, args.command, figures))
        except (ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    for name, entry in catalog().items():
        print(f"pretrained:{name}  ({entry['kind']}, {entry['bytes'] / 1e6:.1f} MB)\n  trained by: {entry['command']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
