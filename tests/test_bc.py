"""Behaviour cloning, the SB3 policy, checkpoints and evaluation, end to end on tiny settings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from agents import bc
from agents.checkpoint import CheckpointError, build_policy, load_policy, save_policy
from agents.config import ConfigError, load_config
from agents.evaluate import main as evaluate_main
from agents.policy import HRMActorCriticPolicy

#: Foraging alone: the default BC config adds the Chase planner's data (minutes of planning)
FORAGING = ["--config", str(Path(__file__).resolve().parents[1] / "configs" / "foraging_bc.yaml")]

TINY_HRM = {"hidden_size": 16, "num_heads": 2, "halt_max_steps": 2, "H_cycles": 1, "L_cycles": 1}
TINY_RUN = [
    "episodes=24", "val_episodes=6", "batch_size=16", "max_batches=6", "eval_every=3",
    "val_states=64", "val_rollouts=2", "test_episodes=2", "checkpoint_every=1",
    "model.hidden_size=16", "model.num_heads=2", "model.halt_max_steps=2",
    "model.H_cycles=1", "model.L_cycles=1", "num_threads=1", "dagger_episodes=3",
]  # fmt: skip


@pytest.fixture()
def tiny_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # data/ and runs/ land in the temp dir
    out = tmp_path / "run"
    code = bc.main(["--no-progress", *FORAGING, "--out", str(out), *[f"--set={o}" for o in TINY_RUN]])
    assert code == 0
    return out


def test_hrm_policy_runs_inside_ppo():
    torch.manual_seed(0)
    env = gym.make("HRMForaging-v0")
    model = PPO(HRMActorCriticPolicy, env, n_steps=16, batch_size=8, n_epochs=1, seed=0,
                policy_kwargs={"hrm_config": TINY_HRM})  # fmt: skip
    model.learn(16)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
    steps = model.policy.last_reasoning_steps
    assert steps is not None and 1 <= int(steps.max()) <= TINY_HRM["halt_max_steps"]


def test_bc_run_writes_checkpoint_metrics_and_evaluates(tiny_run, capsys):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["batches"] == 6 and metrics["policy"] == "hrm"
    for key in ("success_rate", "expert_agreement", "optimal_action_rate"):
        assert 0.0 <= metrics["test"][key] <= 1.0
    # the default config's 8-view vote: segments per decision summed over the views
    views = metrics["config"]["decision_views"]
    assert views == 8
    assert views <= metrics["test"]["mean_reasoning_steps"] <= views * TINY_HRM["halt_max_steps"]
    assert 1 <= metrics["test_single_view"]["mean_reasoning_steps"] <= TINY_HRM["halt_max_steps"]
    assert set(metrics["validation_states_voted"]) == {"agreement", "optimal_action_rate", "mean_reasoning_steps"}
    assert [row["batch"] for row in metrics["history"]] == [3, 6]
    assert (tiny_run / "policy.pt").is_file() and (tiny_run / "sb3_model.zip").is_file()
    assert (tiny_run / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert any((tiny_run / "tb").iterdir())

    capsys.readouterr()
    assert evaluate_main(["--checkpoint", str(tiny_run), "--episodes", "2", "--seed", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("episodes", "success_rate", "mean_path_ratio", "expert_agreement", "optimal_action_rate",
                "mean_reasoning_steps"):  # fmt: skip
        assert key in report
    assert report["episodes"] == 2
    sb3 = PPO.load(tiny_run / "sb3_model.zip")
    assert isinstance(sb3.policy, HRMActorCriticPolicy)


def test_checkpoint_round_trip_gives_identical_actions(tmp_path):
    torch.manual_seed(1)
    env = gym.make("HRMForaging-v0")
    policy = build_policy(env, "hrm", {"hrm_config": TINY_HRM})
    save_policy(tmp_path, policy, "HRMForaging-v0", {}, sb3_zip=False)
    loaded, record = load_policy(tmp_path)
    assert record["policy_type"] == "hrm"
    obs = np.stack([env.reset(seed=s)[0] for s in range(16)])
    policy.set_training_mode(False)
    loaded.set_training_mode(False)
    with torch.no_grad():
        a = policy.get_distribution(torch.as_tensor(obs)).distribution.probs
        b = loaded.get_distribution(torch.as_tensor(obs)).distribution.probs
    assert torch.equal(a, b)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no policy checkpoint"):
        load_policy(tmp_path / "missing")
    env = gym.make("HRMForaging-v0")
    save_policy(tmp_path, build_policy(env, "mlp", {"net_arch": [8]}), "HRMForaging-v0", {}, sb3_zip=False)
    with pytest.raises(CheckpointError, match="trained on HRMForaging-v0"):
        load_policy(tmp_path, "HRMSudoku-v0")
    load_policy(tmp_path, "HRMForagingChase-v0")  # same spaces: allowed
    crafted = tmp_path / "evil.pt"
    import pickle

    crafted.write_bytes(pickle.dumps({"format": "hrm-gym-policy", "x": object()}))
    with pytest.raises(CheckpointError, match="not a readable"):
        load_policy(crafted)


def interrupt_then_resume(monkeypatch, out, overrides: list[str]) -> None:
    """A tiny run stopped by Ctrl-C at its fifth batch, then continued with --resume."""
    calls = {"n": 0}
    original = bc.DeepSupervisionLoss.__call__

    def interrupt_after_four(self, *args):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(bc.DeepSupervisionLoss, "__call__", interrupt_after_four)
    assert bc.main(["--no-progress", *FORAGING, "--out", str(out), *[f"--set={o}" for o in overrides]]) == 130
    saved = torch.load(out / "last.pt", weights_only=True)
    assert json.loads(saved["state_json"])["batches"] == 4
    monkeypatch.setattr(bc.DeepSupervisionLoss, "__call__", original)
    assert bc.main(["--no-progress", "--resume", str(out)]) == 0


@pytest.mark.slow
def test_resume_continues_where_it_stopped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    interrupt_then_resume(monkeypatch, out, TINY_RUN)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["batches"] == 6
    assert [row["batch"] for row in metrics["history"]] == [3, 6]


@pytest.mark.slow
def test_coverage_states_join_the_training_set(tmp_path, monkeypatch):
    from expert.dataset import load_dataset

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert bc.main(["--no-progress", *FORAGING, "--out", str(out), *[f"--set={o}" for o in TINY_RUN],
                    "--set=coverage_per_layout=3", "--set=dagger_rounds=0"]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    train = load_dataset(bc.dataset_dir(bc.BCConfig(episodes=24, val_episodes=6)), "train", "HRMForaging-v0")
    # every one of the 24 training layouts, both phases (food out, food collected), 3 cells each
    assert metrics["train_states"] == train.num_states + 24 * 2 * 3
    with pytest.raises(ValueError, match="coverage_per_layout needs a grid BFS expert"):
        bc.training_coverage(None, bc.BCConfig(env_id="HRMSudoku-v0", coverage_per_layout=1))


def test_bad_config_is_refused(tmp_path, capsys):
    assert bc.main(["--set", "epochz=3", "--out", str(tmp_path / "x")]) == 2
    assert "unknown key" in capsys.readouterr().err
    for sets, message in [
        (["mix_coverage_layouts=5"], "need mix_env_id"),
        (["mix_env_id=HRMForaging-v0", "mix_episodes=5"], "the run's own env_id"),
        (["mix_env_id=HRMForagingChase-v0", "mix_episodes=0"], "mix_episodes and mix_val_episodes must be >= 1"),
        (["mix_env_id=HRMForagingChase-v0", "mix_episodes=5", "mix_coverage_layouts=2", "mix_coverage_per_layout=0"],
         "needs mix_coverage_per_layout >= 1"),
    ]:  # fmt: skip
        assert bc.main([*FORAGING, "--out", str(tmp_path / "x"), *[f"--set={item}" for item in sets]]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(ConfigError):
        load_config(bc.BCConfig, None, ["policy=cnn"])


def test_augmented_labels_follow_the_expert_tie_break():
    """A symmetry maps the optimal set, not the expert's pick: labels are re-picked per state."""
    from expert import make_expert

    env = gym.make("HRMForaging-v0").unwrapped
    expert = make_expert("HRMForaging-v0")
    states, actions, masks = [], [], []
    for seed in range(4):
        obs, info = env.reset(seed=seed)
        expert.reset()
        done = False
        while not done:
            action = expert.act(obs, info)
            states.append(obs)
            actions.append(action)
            masks.append(expert.optimal_actions(obs, info))
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
    states, actions, masks = np.stack(states), np.asarray(actions), np.stack(masks)
    loader = bc.DemonstrationBatches(states, actions, masks, batch_size=16, augment=True, seed=0)
    checked = 0
    for batch in loader:
        for obs, act in zip(batch["obs"], batch["acts"]):
            # the expert, asked in the transformed state, picks the same action
            expert.reset()
            assert expert.act(obs, {}) == act
            checked += 1
    assert checked >= 16


def test_augmentation_refuses_labels_that_are_not_the_tie_break():
    states = np.zeros((4, 16, 16), dtype=np.uint8)
    masks = np.array([[True, True, False, False]] * 4)
    with pytest.raises(ValueError, match="first optimal action"):
        bc.DemonstrationBatches(states, np.array([0, 1, 0, 0]), masks, batch_size=2, augment=True, seed=0)
    bc.DemonstrationBatches(states, np.array([0, 1, 0, 0]), masks, batch_size=2, augment=False, seed=0)


def test_sudoku_policy_masks_exactly_the_env_rule_and_uses_the_cell_head():
    from agents.policy import sudoku_legal_actions

    env = gym.make("HRMSudoku-v0").unwrapped
    policy = build_policy(
        env, "hrm",
        {"hrm_config": {"head": "cell_action", "vocab_out": 9, "block": "attention", "patch_size": 1,
                        "hidden_size": 16, "num_heads": 2, "H_cycles": 1, "L_cycles": 1},
         "preset": "cpu_grid16", "action_mask": "sudoku"},
    )  # fmt: skip
    boards = []
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        for _ in range(5):
            boards.append(obs.copy())
            legal = sudoku_legal_actions(torch.as_tensor(obs)[None])[0].numpy()
            np.testing.assert_array_equal(legal, info["action_mask"])
            obs, _, terminated, _, info = env.step(int(np.flatnonzero(legal)[0]))
            if terminated:
                break
    obs = torch.as_tensor(np.stack(boards))
    policy.set_training_mode(False)
    with torch.no_grad():
        probs = policy.get_distribution(obs).distribution.probs
    assert probs.shape == (len(boards), 729)
    assert (probs[~sudoku_legal_actions(obs)] == 0).all()
    with pytest.raises(ValueError, match="action_mask='sudoku' needs 9x9 boards"):
        build_policy(gym.make("HRMForaging-v0"), "hrm", {"action_mask": "sudoku"})


MIX_RUN = [
    "mix_env_id=HRMForagingChase-v0", "mix_episodes=8", "mix_val_episodes=4",
    "mix_coverage_layouts=3", "mix_coverage_per_layout=2", "mix_enemy_radius=4",
]  # fmt: skip


@pytest.mark.slow
def test_mix_env_joins_training_validation_dagger_and_test_and_resumes(tmp_path, monkeypatch):
    """A Chase mix: its data, coverage and DAgger states are trained on, kept across --resume."""
    from expert.dataset import load_dataset

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    interrupt_then_resume(monkeypatch, out, TINY_RUN + MIX_RUN)

    metrics = json.loads((out / "metrics.json").read_text())
    config = bc.BCConfig(**metrics["config"])
    foraging = load_dataset(bc.dataset_dir(config), "train", "HRMForaging-v0")
    chase = load_dataset(bc.dataset_dir(config, mix=True), "train", "HRMForagingChase-v0")
    coverage, _, _ = bc.mix_coverage(chase, config)
    assert 0 < len(coverage) <= 3 * 2 * 2  # 3 layouts, 2 phases, 2 cells
    rounds = sorted(p.name for p in out.glob("dagger_*.npz"))
    assert rounds == [f"dagger_0{r}{mix}.npz" for r in range(3) for mix in ("", "_mix")]
    dagger = 0
    for name in rounds:
        with np.load(out / name, allow_pickle=False) as extra:
            dagger += len(extra["states"])
            assert (extra["states"] == 5).any(axis=(1, 2)).all() == name.endswith("_mix.npz")  # the enemy
    foraging_coverage = len(bc.training_coverage(foraging, config)[0])  # the default config's coverage
    assert (
        metrics["train_states"] == foraging.num_states + foraging_coverage + chase.num_states + len(coverage) + dagger
    )
    assert {"val_mix_success_rate", "val_mix_caught_rate"} <= set(metrics["history"][-1])
    assert metrics["test_mix"]["episodes"] == 2 and "caught_rate" in metrics["test_mix"]
    with pytest.raises(ValueError, match="mix_coverage_layouts needs the Chase planner"):
        bc.mix_coverage(chase, bc.BCConfig(mix_env_id="HRMMaze-v0", mix_coverage_layouts=1))


def test_mix_coverage_is_cached_by_its_settings_and_rebuilt_when_they_differ(tmp_path, capsys):
    from expert.dataset import load_dataset
    from expert.generate import ensure_dataset

    config = bc.BCConfig(mix_env_id="HRMForagingChase-v0", mix_episodes=3, mix_val_episodes=1,
                         mix_coverage_layouts=2, mix_coverage_per_layout=2, data_dir=str(tmp_path))  # fmt: skip
    directory = bc.dataset_dir(config, mix=True)
    ensure_dataset("HRMForagingChase-v0", 3, config.data_seed, directory, val_episodes=1, progress=False)
    chase = load_dataset(directory, "train", "HRMForagingChase-v0")
    *built, cached = bc.cached_mix_coverage(directory, chase, config)
    assert not cached and len(built[0]) > 0
    *again, cached = bc.cached_mix_coverage(directory, chase, config)
    assert cached and all(np.array_equal(a, b) for a, b in zip(built, again))
    assert all(np.array_equal(a, b) for a, b in zip(built, bc.mix_coverage(chase, config)))  # what it caches

    other = dataclasses.replace(config, mix_enemy_radius=3)  # another file, built anew
    assert not bc.cached_mix_coverage(directory, chase, other)[-1]
    assert len(list(directory.glob("coverage_*.npz"))) == 2
    (path,) = directory.glob("coverage_*R6*.npz")
    path.write_bytes(b"not an npz")  # a broken cache is rebuilt, never trusted
    *rebuilt, cached = bc.cached_mix_coverage(directory, chase, config)
    assert not cached and all(np.array_equal(a, b) for a, b in zip(built, rebuilt))
    assert "unreadable" in capsys.readouterr().out
    with np.load(path, allow_pickle=False) as saved:  # a file of other settings under this name
        arrays = dict(saved)
    np.savez(path, **{**arrays, "key": np.array(str(arrays["key"]).replace('"seed": 0', '"seed": 5'))})
    assert not bc.cached_mix_coverage(directory, chase, config)[-1]
    assert "other settings" in capsys.readouterr().out


def test_states_added_without_augmentation_stay_untransformed():
    """Mix-env states (augment=False) reach the batches exactly as labelled; the rest are augmented."""
    from expert import make_expert

    foraging, chase = gym.make("HRMForaging-v0").unwrapped, gym.make("HRMForagingChase-v0").unwrapped
    expert = make_expert("HRMForaging-v0")
    states, masks = [], []
    for seed in range(32):
        obs, info = foraging.reset(seed=seed)
        states.append(obs)
        masks.append(expert.optimal_actions(obs, info))
    states, masks = np.stack(states), np.stack(masks)
    loader = bc.DemonstrationBatches(states, masks.argmax(1), masks, batch_size=16, augment=True, seed=0)
    chase_states = np.stack([chase.reset(seed=seed)[0] for seed in range(32)])
    chase_actions = np.arange(32) % 4  # any labels: they must come through unchanged
    loader.add(chase_states, chase_actions, np.eye(4, dtype=bool)[chase_actions], augment=False)
    assert loader.augmentable.tolist() == [True] * 32 + [False] * 32
    originals = {s.tobytes(): int(a) for s, a in zip(chase_states, chase_actions)}
    seen_chase = transformed = 0
    for batch in loader:
        for obs, act in zip(batch["obs"], batch["acts"]):
            if (obs == 5).any():
                seen_chase += 1
                assert originals[obs.tobytes()] == act
            elif not any(np.array_equal(obs, s) for s in states):
                transformed += 1
    assert seen_chase == 32 and transformed > 16
