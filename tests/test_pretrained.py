"""Shipped agents: ``pretrained:NAME`` resolves to a checked file in the package, for every command."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

import agents.pretrained as pretrained
from agents.checkpoint import CheckpointError, build_policy, load_policy, save_policy
from agents.evaluate import main as evaluate_main


@pytest.fixture()
def shipped(tmp_path, monkeypatch):
    """A package folder holding one shipped tiny policy, ``pretrained:tiny``."""
    run = tmp_path / "run"
    env = gym.make("HRMForaging-v0")
    save_policy(run, build_policy(env, "mlp", {"net_arch": [8]}), "HRMForaging-v0", {}, sb3_zip=False)
    (run / "metrics.json").write_text(json.dumps({"test": {"success_rate": 0.0}}))
    package = tmp_path / "package"
    package.mkdir()
    monkeypatch.setattr(pretrained, "HERE", package)
    monkeypatch.setattr(pretrained, "CATALOG", package / "catalog.json")
    pretrained.catalog.cache_clear()
    from agents.pretrained import __main__ as cli

    monkeypatch.setattr(cli, "HERE", package)
    monkeypatch.setattr(cli, "CATALOG", package / "catalog.json")
    assert cli.main(["add", "tiny", "--run", str(run), "--command", "python -m agents.bc --set policy=mlp"]) == 0
    pretrained.catalog.cache_clear()
    yield package
    pretrained.catalog.cache_clear()


def test_a_shipped_agent_loads_by_name_in_every_command(shipped, capsys):
    entry = pretrained.catalog()["tiny"]
    assert entry["kind"] == "policy" and entry["figures"] == {"test": {"success_rate": 0.0}}
    policy, record = load_policy("pretrained:tiny")
    assert record["env_id"] == "HRMForaging-v0"
    capsys.readouterr()
    assert evaluate_main(["--checkpoint", "pretrained:tiny", "--episodes", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 2


def test_unknown_and_damaged_agents_are_clear_errors(shipped, capsys):
    with pytest.raises(CheckpointError, match="unknown agent 'pretrained:nope'; shipped: pretrained:tiny"):
        load_policy("pretrained:nope")
    (shipped / "tiny.pt").write_bytes(b"damaged")
    with pytest.raises(CheckpointError, match="does not match its recorded sha256"):
        load_policy("pretrained:tiny")
    assert evaluate_main(["--checkpoint", "pretrained:tiny", "--episodes", "2"]) == 2
    assert "sha256" in capsys.readouterr().err


#: Each shipped agent, what it is scored on (an env for policies, eval-set params for puzzle
#: solvers) and the least it must reach on a small fixed held-out set (the catalog has its full
#: held-out figures).
SHIPPED = {
    "chase-ppo": ("HRMForagingChase-v0", 0.8),
    "foraging-bc": ("HRMForaging-v0", 0.9),
    "maze-plan": ("HRMMaze-v0", 0.9),
    "maze-solver": ({"sizes": [11]}, 0.95),
    "sudoku-solver": ({"mix": [{"n_empty": [1, 35]}]}, 0.95),
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_agent_loads_and_scores_on_a_fixed_set(name):
    pretrained.catalog.cache_clear()
    assert name in pretrained.catalog(), f"{name} is not in agents/pretrained/catalog.json"
    target, least = SHIPPED[name]
    if pretrained.catalog()[name]["kind"] == "policy":
        from agents.evaluate import policy_actor, run_episodes, test_seeds

        policy, _ = load_policy(f"pretrained:{name}", target)
        policy.set_training_mode(False)
        score = run_episodes(policy_actor(policy), target, {}, seeds=test_seeds(777, 30))["success_rate"]
    else:
        import numpy as np

        from agents.puzzles.checkpoint import load_checkpoint
        from agents.puzzles.engine import solve_set

        model, task, record = load_checkpoint(f"pretrained:{name}")
        inputs = task.check_inputs(task.sample(np.random.default_rng(777), 40, {**record["task_params"], **target}))
        score = solve_set(model, task, inputs, task.targets(inputs), 8, "max", pick="confident").summary()["valid_rate"]
    assert score >= least, score


def test_the_catalog_lists_exactly_the_shipped_files():
    pretrained.catalog.cache_clear()
    files = {entry["file"] for entry in pretrained.catalog().values()}
    assert files == {p.name for p in pretrained.HERE.glob("*.pt")}
    assert set(SHIPPED) <= set(pretrained.catalog())


def test_hrm_demo_without_a_checkpoint_renders_every_shipped_agent(shipped, tmp_path, capsys):
    from agents.demo import main as demo_main

    assert demo_main(["--out", str(tmp_path / "gifs")]) == 0
    assert (tmp_path / "gifs" / "tiny.gif").read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    assert "pretrained:tiny" in capsys.readouterr().out
