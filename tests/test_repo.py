"""The repo's promises about itself: CI runs the README's own test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README's quick start has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_two_lines_install_and_run():
    lines = quick_start_lines()
    assert len(lines) == 2, lines
    assert all(line.startswith("pip install torch==2.13.0 && pip install -e ") for line in lines)
    assert "pytest" in lines[1]


def test_ci_runs_the_readme_test_line():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quick_start_lines()[1] in ci, "the README's test line must appear verbatim in .ci/run"
