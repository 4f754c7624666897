"""PPO fine-tuning (agents.ppo) end to end on tiny settings: init from BC, Q head, warm-up, resume, comparison."""

from __future__ import annotations

import json
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from agents import bc, ppo
from agents.checkpoint import load_policy
from agents.common.run import RunDirectory
from agents.config import load_config
from agents.evaluate import main as evaluate_main
from agents.rl import comparison, validation
from agents.rl.state import PPOState
from hrm_gym.core.grid import AGENT, NEST

#: Foraging alone: the default BC config adds the Chase planner's data (minutes of planning)
FORAGING = ["--config", str(Path(__file__).resolve().parents[1] / "configs" / "foraging_bc.yaml")]

TINY_BC = [
    "episodes=24", "val_episodes=6", "batch_size=16", "max_batches=6", "eval_every=3",
    "val_states=64", "val_rollouts=2", "test_episodes=2", "checkpoint_every=3",
    "model.hidden_size=16", "model.num_heads=2", "model.halt_max_steps=2",
    "model.H_cycles=1", "model.L_cycles=1", "num_threads=1", "dagger_episodes=3",
]  # fmt: skip
TINY_PPO = [
    "n_envs=2", "n_steps=16", "batch_size=16", "n_epochs=1", "total_timesteps=64", "eval_every=32",
    "eval_episodes=2", "checkpoint_every=32", "test_episodes=3", "foraging_episodes=2",
    "num_threads=1", "value_warmup_rollouts=1", "lr=0.001", "val_foraging_episodes=2",
]  # fmt: skip


def overrides(items: list[str]) -> list[str]:
    return [f"--set={item}" for item in items]


@pytest.fixture(scope="module")
def bc_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bc")
    out = root / "bc-tiny"
    torch.set_num_threads(1)
    assert (
        bc.main(["--no-progress", *FORAGING, "--out", str(out), *overrides([*TINY_BC, f"data_dir={root / 'data'}"])])
        == 0
    )
    return out


@pytest.fixture(scope="module")
def ppo_run(bc_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("ppo") / "run"
    code = ppo.main(["--no-progress", "--init", str(bc_run), "--out", str(out), *overrides(TINY_PPO)])
    assert code == 0
    return out


def chase_obs(n: int, seed: int = 7) -> torch.Tensor:
    env = gym.make("HRMForagingChase-v0")
    return torch.as_tensor(np.stack([env.reset(seed=seed + i)[0] for i in range(n)]))


def tiny_config(bc_run, **changes) -> ppo.PPOConfig:
    config = load_config(ppo.PPOConfig, ppo.DEFAULT_CONFIG, TINY_PPO)
    return ppo.replace(config, init=str(bc_run), **changes)


def test_ppo_from_bc_starts_with_identical_action_probabilities(bc_run):
    config = tiny_config(bc_run)
    env = ppo.make_env(config, seed=0)
    model, facts = ppo.build_model(config, env, bc_run, tb=None)
    assert facts["init_max_prob_diff"] == 0.0
    assert [e.unwrapped.spec.id for e in env.envs] == ["HRMForagingChase-v0", "HRMForaging-v0"]  # rehearsal
    bc_policy, _ = load_policy(bc_run, "HRMForagingChase-v0")
    obs = chase_obs(16)
    bc_policy.set_training_mode(False)
    model.policy.set_training_mode(False)
    with torch.no_grad():
        expected = bc_policy.get_distribution(obs).distribution.probs
        got = model.policy.get_distribution(obs).distribution.probs
    assert torch.equal(expected, got)
    assert model.policy.max_segments == bc_policy.max_segments
    env.close()


def test_shaping_wraps_the_chase_envs_only_and_monitor_logs_the_envs_own_return(bc_run):
    from hrm_gym.wrappers import EnemyDistanceShaping

    config = tiny_config(bc_run, shaping_weight=2.0, shaping_radius=4, decision_views=1)
    env = ppo.make_env(config, seed=0)
    chase, foraging = env.envs
    assert isinstance(chase, EnemyDistanceShaping) and (chase.weight, chase.radius, chase.gamma) == (
        2.0,
        4,
        config.gamma,
    )
    assert not isinstance(foraging, EnemyDistanceShaping)
    model, _ = ppo.build_model(config, env, bc_run, tb=None)
    assert model.policy.decision_views == 1
    rng = np.random.default_rng(0)
    env.reset()
    shaped, seen = [0.0, 0.0], []
    for _ in range(200):
        _, rewards, dones, infos = env.step(rng.integers(4, size=2))
        shaped[0] += rewards[0]
        if dones[0]:
            seen.append((infos[0]["episode"]["r"], shaped[0]))
            shaped[0] = 0.0
    assert seen and all(r in (-10.0, -9.0, 11.0, 0.0, 1.0) for r, _ in seen)  # Monitor: unshaped returns
    assert any(abs(r - total) > 1e-6 for r, total in seen)  # while the learner sees the shaped rewards
    env.close()


def test_value_warmup_trains_only_the_value_head_and_q_head_stays_frozen(bc_run):
    config = tiny_config(bc_run, value_warmup_rollouts=1)
    env = ppo.make_env(config, seed=0)
    model, _ = ppo.build_model(config, env, bc_run, tb=None)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(config.n_steps * config.n_envs)  # one rollout, one (warm-up) update
    changed = {k for k, v in model.policy.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("critic.") for k in changed), changed  # the separate critic
    model.learn(config.n_steps * config.n_envs, reset_num_timesteps=False)  # a real PPO update
    changed = {k for k, v in model.policy.state_dict().items() if not torch.equal(v, before[k])}
    assert any(k.startswith("hrm.action_head") for k in changed)
    assert any(k.startswith(("hrm.H_level", "hrm.L_level")) for k in changed)  # the trunk moves
    assert not any(k.startswith("hrm.q_head") for k in changed)  # the Q head does not
    assert all(not p.requires_grad for p in model.policy.hrm.q_head.parameters())
    env.close()


def test_separate_critic_leaves_the_trunk_to_the_policy_loss(bc_run):
    config = tiny_config(bc_run, value_warmup_rollouts=0)
    env = ppo.make_env(config, seed=0)
    model, _ = ppo.build_model(config, env, bc_run, tb=None)
    policy = model.policy
    obs = chase_obs(8)
    _, values, _ = policy(obs)
    values.sum().backward()  # the value reaches the critic MLP only, never the HRM
    assert all(p.grad is None or not p.grad.any() for p in policy.hrm.parameters())
    assert any(p.grad is not None and p.grad.any() for p in policy.critic.parameters())
    env.close()


def test_update_scores_actions_at_the_depth_they_were_taken(bc_run, monkeypatch):
    """Also the guard on SB3's one private hook: minibatches must be drawn through ``_get_samples``."""
    config = tiny_config(bc_run, value_warmup_rollouts=0)
    env = ppo.make_env(config, seed=0)
    model, _ = ppo.build_model(config, env, bc_run, tb=None)
    policy = model.policy
    hrm = policy.hrm
    with torch.no_grad():  # a Q head that reads the state, biased so rows halt after 1 or 2 segments
        hrm.q_head.weight.copy_(torch.randn(hrm.q_head.weight.shape, generator=torch.Generator().manual_seed(0)) * 3)
        hrm.q_head.bias.zero_()
        tokens = policy.tokens(chase_obs(64))
        q_halt = hrm.eval()(hrm.initial_carry({"inputs": tokens}), {"inputs": tokens})[1]["q_halt_logits"]
        hrm.q_head.bias.copy_(torch.tensor([-float(q_halt.median()), 0.0]))
    monkeypatch.setattr(ppo.HRMPPO, "train", lambda self: None)  # keep the rollout, skip the update
    model.learn(config.n_steps * config.n_envs)
    buffer = model.rollout_buffer
    assert set(np.unique(buffer.segments)) == {1, 2}
    samples = next(buffer.get(batch_size=None))  # all of it, flattened; sets policy.replay_segments
    with torch.no_grad():
        hrm.q_head.bias.copy_(torch.tensor([100.0, 0.0]))  # now every row would halt at once
        _, replayed, _ = policy.evaluate_actions(samples.observations, samples.actions.long().flatten())
        assert policy.replay_segments is None  # used once
        _, adaptive, _ = policy.evaluate_actions(samples.observations, samples.actions.long().flatten())
    torch.testing.assert_close(replayed, samples.old_log_prob)  # the rollout's own depths
    assert not torch.allclose(adaptive, samples.old_log_prob)
    env.close()


@pytest.mark.slow
def test_run_writes_comparison_checkpoint_and_evaluates(ppo_run, bc_run, capsys):
    metrics = json.loads((ppo_run / "metrics.json").read_text())
    assert set(metrics["comparison"]) == set(ppo.COMPARISON_ROWS)
    for row in metrics["comparison"].values():
        assert set(row) == set(ppo.COMPARISON_KEYS)
        assert row["episodes"] == 3
        assert abs(row["success_rate"] + row["caught_rate"] + row["timeout_rate"] - 1.0) < 1e-9
    rows = metrics["comparison"]
    assert rows["planner (ceiling)"]["success_rate"] >= rows["blind expert"]["success_rate"]
    assert rows["planner (ceiling)"]["caught_rate"] == 0.0
    assert metrics["timesteps"] == 64 and metrics["init"]["init"] == str(bc_run)
    assert [row["timesteps"] for row in metrics["history"]] == [0, 32, 64]
    assert all(0 <= row["foraging_success_rate"] <= 1 for row in metrics["history"])  # validated on both envs
    assert [row["timesteps"] for row in metrics["scratch_history"]][-1] == 64  # same step budget
    assert metrics["foraging"]["episodes"] == 2 and metrics["foraging_bc"]["episodes"] == 2  # BC and PPO
    assert metrics["q_head"] == "frozen"
    assert (ppo_run / "curves.png").is_file() and any((ppo_run / "tb").iterdir())
    assert (ppo_run / "scratch" / "policy.pt").is_file()
    with np.load(ppo_run / "dodge_layouts.npz") as saved:
        assert saved["layouts"].shape == (metrics["dodge_layouts"], 16, 16)

    capsys.readouterr()
    assert evaluate_main(["--checkpoint", str(ppo_run), "--episodes", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["env_id"] == "HRMForagingChase-v0" and "caught_rate" in report
    # the Q head in the saved policy is BC's
    tuned, _ = load_policy(ppo_run)
    start, _ = load_policy(bc_run)
    assert torch.equal(tuned.hrm.q_head.weight, start.hrm.q_head.weight)


def test_validation_uses_val_views_and_keeps_the_best_mean_of_both_envs(bc_run, tmp_path, monkeypatch):
    """Validation decisions vote over ``val_views``; the best checkpoint maximises mean success over Chase and Foraging."""
    from types import SimpleNamespace

    from stable_baselines3.common.logger import configure

    policy, _ = load_policy(bc_run, "HRMForagingChase-v0")
    config = tiny_config(bc_run, val_views=1, val_foraging_episodes=3)
    script = iter([(0.5, 0.2), (0.4, 1.0), (0.6, 0.0)])  # (Chase, Foraging) success of three evaluations
    calls, views_used, current = [], [], {}

    def fake_run_episodes(act, env_id, env_kwargs, seeds, label_states=True):
        calls.append((env_id, len(seeds)))
        if env_id == "HRMForagingChase-v0":
            current["pair"] = next(script)
        success = current["pair"][env_id != "HRMForagingChase-v0"]
        return {"success_rate": success, "caught_rate": 1 - success, "timeout_rate": 0.0, "mean_path_ratio": 1.0,
                "mean_episode_length": 10.0, "mean_return": 0.0, "mean_reasoning_steps": 1.0}  # fmt: skip

    real_actor = validation.policy_actor
    monkeypatch.setattr(validation, "run_episodes", fake_run_episodes)
    monkeypatch.setattr(
        validation, "policy_actor", lambda p, views=None: views_used.append(views) or real_actor(p, views=views)
    )
    state = PPOState()
    run = RunDirectory.create(tmp_path / "run", "agents.ppo")
    callback = validation.ValidationCallback(config, run, state, save_last=lambda: None)
    callback.model = SimpleNamespace(policy=policy, num_timesteps=0, logger=configure(None, []))
    for steps in (0, 10, 20):
        callback.model.num_timesteps = steps
        callback.evaluate()
    assert calls == [("HRMForagingChase-v0", 2), ("HRMForaging-v0", 3)] * 3
    assert views_used == [1] * 6  # one fresh actor per env and evaluation
    assert [row["foraging_success_rate"] for row in state.history] == [0.2, 1.0, 0.0]
    assert state.best["row"]["timesteps"] == 10  # mean 0.7; Chase alone would have picked the last
    saved = load_policy(run.path, "HRMForagingChase-v0")[1]
    assert json.loads(saved["extra_json"])["validation"]["timesteps"] == 10  # the checkpoint kept is that one


@pytest.mark.slow
def test_comparison_rows_of_a_policy_share_its_decisions_without_changing_them(bc_run):
    from agents.evaluate import run_episodes, test_seeds

    policy, _ = load_policy(bc_run, "HRMForagingChase-v0")
    seeds = test_seeds(12345, 6)
    decisions = {}
    rows = ppo.compare({"bc": policy}, "HRMForagingChase-v0", {}, seeds=seeds, loop_escape=True, decisions=decisions)
    alone = {"bc": ppo.score(run_episodes(ppo.policy_actor(policy), "HRMForagingChase-v0", {}, seeds=seeds)),
             "bc + loop escape": ppo.score(run_episodes(ppo.LoopEscape(policy), "HRMForagingChase-v0", {}, seeds=seeds))}  # fmt: skip
    for name, row in alone.items():
        assert rows[name] == row  # the same figures as each row scored on its own
    shared = decisions["bc"]
    assert shared.policy is policy and 0 < shared.computed == len(shared.memo)
    steps = rows["bc"]["mean_episode_length"] * 6 + rows["bc + loop escape"]["mean_episode_length"] * 6
    assert shared.computed < steps  # the second row re-used the first row's decisions


@pytest.mark.slow
def test_compare_again_on_fixed_layouts(ppo_run, tmp_path, capsys):
    env = gym.make("HRMForagingChase-v0")
    grids = []
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        grids.append(np.where(obs == AGENT, NEST, obs))  # the agent starts on the nest
    layouts = tmp_path / "layouts.npz"
    np.savez(layouts, layouts=np.stack(grids))
    assert ppo.main(["--compare", str(ppo_run), "--layouts", str(layouts)]) == 0
    metrics = json.loads((ppo_run / "metrics.json").read_text())
    assert set(metrics["comparison_layouts"]) == set(ppo.COMPARISON_ROWS)
    assert all(row["episodes"] == 3 for row in metrics["comparison_layouts"].values())
    assert "planner (ceiling)" in capsys.readouterr().out


@pytest.mark.slow
def test_resume_continues_where_it_stopped(bc_run, tmp_path, monkeypatch):
    out = tmp_path / "run"
    settings = overrides([*TINY_PPO, "scratch_baseline=false", "foraging_episodes=0", "test_episodes=2",
                          "total_timesteps=128"])  # fmt: skip
    calls = {"n": 0}
    original = ppo.HRMPPO.train

    def interrupt_on_third_update(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        original(self)

    monkeypatch.setattr(ppo.HRMPPO, "train", interrupt_on_third_update)
    assert ppo.main(["--no-progress", "--init", str(bc_run), "--out", str(out), *settings]) == 130
    state = json.loads(torch.load(out / "last.pt", weights_only=True)["state_json"])
    assert state["timesteps"] == 96 and state["phase"] == "train"
    assert not list(out.glob("*.zip"))  # nothing SB3 would unpickle
    monkeypatch.setattr(ppo.HRMPPO, "train", original)
    assert ppo.main(["--no-progress", "--out", str(out), *settings]) == 2  # refuses to overwrite
    assert ppo.main(["--no-progress", "--resume", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["timesteps"] == 128
    steps = [row["timesteps"] for row in metrics["history"]]
    assert steps[0] == 0 and steps[-1] == 128 and steps == sorted(set(steps))


def test_newest_bc_run_and_bad_settings(tmp_path, capsys):
    chase = "HRMForagingChase-v0"
    assert ppo.newest_bc_run(chase, tmp_path) is None
    configs = {"bc-a": {"env_id": "HRMForaging-v0", "mix_env_id": chase}, "bc-b": {"env_id": chase},
               "bc-c": {"env_id": "HRMForaging-v0", "mix_env_id": ""}}  # fmt: skip
    for i, (name, config) in enumerate(configs.items()):
        (tmp_path / name).mkdir()
        (tmp_path / name / "policy.pt").write_bytes(b"x")
        (tmp_path / name / "config.yaml").write_text(yaml.safe_dump(config))
        os.utime(tmp_path / name / "policy.pt", (i + 1, i + 1))
    # bc-c is the newest but never saw the enemy: PPO on Chase passes it over
    assert ppo.newest_bc_run(chase, tmp_path) == tmp_path / "bc-b"
    assert ppo.newest_bc_run("HRMForaging-v0", tmp_path) == tmp_path / "bc-c"
    (tmp_path / "bc-b" / "config.yaml").write_text("!!python/object:os.system {}")  # data only: unreadable = skipped
    assert ppo.newest_bc_run(chase, tmp_path) == tmp_path / "bc-a"

    assert ppo.main(["--set", "n_envs=0", "--out", str(tmp_path / "x")]) == 2
    assert "n_envs must be >= 1" in capsys.readouterr().err
    assert ppo.main(["--set", "policy=mlp", "--out", str(tmp_path / "x")]) == 2
    assert "init=none" in capsys.readouterr().err
    assert ppo.main(["--set", "n_envs=1", "--out", str(tmp_path / "x")]) == 2
    assert "foraging_envs must be in [0, n_envs=1)" in capsys.readouterr().err
    assert ppo.main(["--set", "shaping_weight=-1", "--out", str(tmp_path / "x")]) == 2
    assert "shaping_weight must be >= 0" in capsys.readouterr().err
    assert ppo.main(["--set", "decision_views=9", "--out", str(tmp_path / "x")]) == 2
    assert "decision_views must be 1..8" in capsys.readouterr().err
    assert ppo.main(["--set", "val_views=0", "--out", str(tmp_path / "x")]) == 2
    assert "val_views must be 1..8 or null" in capsys.readouterr().err
    assert ppo.main(["--set", "val_foraging_episodes=-1", "--out", str(tmp_path / "x")]) == 2
    assert "val_foraging_episodes" in capsys.readouterr().err
    assert ppo.main(["--set", "lr_schedule=cosine", "--out", str(tmp_path / "x")]) == 2
    assert "lr_schedule" in capsys.readouterr().err
    assert ppo.main(["--set", "q_head=trained", "--out", str(tmp_path / "x")]) == 2
    assert "q_head" in capsys.readouterr().err
    assert ppo.main(["--init", str(tmp_path / "nowhere"), "--out", str(tmp_path / "y"), "--no-progress"]) == 2
    assert "no policy.pt" in capsys.readouterr().err


def test_expert_actors_and_dodge_layouts_replay(monkeypatch):
    from agents.evaluate import run_episodes, test_seeds

    seeds = test_seeds(12345, 10)
    planner = comparison.ExpertActor("planner", {})
    assert comparison.episode_outcomes(planner, "HRMForagingChase-v0", {}, seeds) == ["success"] * 10
    blind = comparison.episode_outcomes(comparison.ExpertActor("blind", {}), "HRMForagingChase-v0", {}, seeds)
    assert "caught" in blind and "success" in blind
    # with the planner standing in for the PPO policy, the dodge layouts are where blind is caught
    monkeypatch.setattr(comparison, "policy_actor", lambda policy, decisions=None: planner)

    class Stub:
        def set_training_mode(self, mode):
            pass

    layouts = comparison.dodge_layouts(Stub(), "HRMForagingChase-v0", {}, seeds)
    assert len(layouts) == blind.count("caught")
    replay_blind = run_episodes(comparison.ExpertActor("blind", {}), "HRMForagingChase-v0", {}, layouts=layouts)
    replay_planner = run_episodes(planner, "HRMForagingChase-v0", {}, layouts=layouts)
    assert replay_blind["caught_rate"] == 1.0 and replay_planner["success_rate"] == 1.0
    with pytest.raises(ValueError, match="expert kind"):
        comparison.ExpertActor("oracle", {})


@pytest.mark.slow
def test_same_seed_gives_identical_weights_and_a_dropped_zip_is_refused(bc_run, tmp_path, capsys):
    settings = overrides([*TINY_PPO, "scratch_baseline=false", "foraging_episodes=0", "test_episodes=2",
                          "dodge_search_episodes=2"])  # fmt: skip
    for name in ("a", "b"):
        assert ppo.main(["--no-progress", "--init", str(bc_run), "--out", str(tmp_path / name), *settings]) == 0
    a, b = (torch.load(tmp_path / n / "policy.pt", weights_only=True)["state_dict"] for n in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["timesteps"] == 64 and metrics["stopped_by"] == "total_timesteps"
    assert {"cpu", "threads", "device"} <= set(metrics["machine"]) and metrics["steps_per_s"] > 0
    (tmp_path / "a" / "last.zip").write_bytes(b"PK crafted")
    capsys.readouterr()
    assert ppo.main(["--no-progress", "--resume", str(tmp_path / "a")]) == 2
    assert "last.zip: a file this run did not write" in capsys.readouterr().err


def test_dodge_gif_shows_the_policy_beside_the_blind_expert(bc_run, tmp_path):
    run = RunDirectory.create(tmp_path / "run", ppo.COMMAND)
    policy, _ = load_policy(bc_run, "HRMForagingChase-v0")
    ppo.save_policy(run.path, policy, "HRMForagingChase-v0", {})
    for name in (ppo.POLICY_FILE, "sb3_model.zip"):
        run.recorded(name)
    obs, _ = gym.make("HRMForagingChase-v0").reset(seed=3)
    run.save_arrays("dodge_layouts.npz", layouts=np.where(obs == AGENT, NEST, obs)[None].astype(np.uint8))
    config = tiny_config(bc_run)
    assert ppo.write_dodge_gif(config, run, 0) is None
    gif = ppo.write_dodge_gif(config, run, 1)
    assert gif == run.path / "ppo_vs_blind.gif" and gif.read_bytes()[:6] == b"GIF89a"
    assert run.has("ppo_vs_blind.gif")  # recorded: a resumed run accepts it
    RunDirectory.open(run.path, ppo.COMMAND)


def test_linear_lr_schedule_decays_from_lr_to_zero_over_the_budget():
    env = gym.make("HRMForaging-v0")
    for schedule, halfway in (("constant", 0.001), ("linear", 0.0005)):
        config = ppo.replace(load_config(ppo.PPOConfig, ppo.DEFAULT_CONFIG, TINY_PPO), lr_schedule=schedule)
        model = ppo.new_model(config, env, "mlp", {}, None)
        assert model.lr_schedule(1.0) == pytest.approx(0.001)
        assert model.lr_schedule(0.5) == pytest.approx(halfway)
