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


def test_the_readme_pipeline_runs_bc_then_ppo_on_checked_configs():
    from agents import bc, ppo
    from agents.config import load_config

    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "python -m agents.bc && python -m agents.ppo" in readme  # the mission's two commands, bare
    found = re.findall(r"python -m (agents\.\w+) --config (configs/quick_\w+\.yaml)", readme)
    assert [module for module, _ in found] == ["agents.bc", "agents.ppo"], found  # BC, then PPO from it
    schemas = {"agents.bc": (bc.BCConfig, bc.check_config), "agents.ppo": (ppo.PPOConfig, ppo.check_config)}
    for module, path in found:
        schema, check = schemas[module]
        check(load_config(schema, ROOT / path, []))  # a quick config is a valid config of its trainer
    for path in (ROOT / found[0][1], bc.DEFAULT_CONFIG):
        assert load_config(bc.BCConfig, path, []).mix_env_id == "HRMForagingChase-v0"  # BC has seen the enemy
    quick_ppo = load_config(ppo.PPOConfig, ROOT / found[1][1], [])
    assert quick_ppo.init == "auto" and quick_ppo.gif_episodes >= 1  # takes that BC run; writes the GIF
