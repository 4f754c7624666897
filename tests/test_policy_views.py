"""Greedy decisions checked by a vote of the grid's symmetric views (HRMActorCriticPolicy.greedy_actions)."""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

import hrm_gym  # noqa: F401
from agents.augment import NUM_SYMMETRIES, transform_grid_tensors, transform_grids
from agents.checkpoint import build_policy, load_policy, save_policy
from agents.policy import HRMActorCriticPolicy
from expert import make_expert

TINY = {"hidden_size": 16, "num_heads": 2, "halt_max_steps": 2, "H_cycles": 1, "L_cycles": 1}


def foraging_states(n: int, seed: int = 0) -> np.ndarray:
    """Expert states of a few episodes (many with two tied optimal moves)."""
    env = gym.make("HRMForaging-v0").unwrapped
    expert = make_expert("HRMForaging-v0")
    states = []
    for episode in range(n):
        obs, info = env.reset(seed=seed + episode)
        done = False
        while not done:
            states.append(obs)
            obs, _, terminated, truncated, info = env.step(expert.act(obs, info))
            done = terminated or truncated
    return np.stack(states)


def stub_network(policy: HRMActorCriticPolicy, monkeypatch, wrong_first_rows: int = 0) -> None:
    """Replace the HRM by a perfect imitator of the expert: probability 1 on the expert's move
    in whatever view it is shown. ``wrong_first_rows``: the first rows of the batch (the
    unturned view of the first observations) instead get a move the expert finds not optimal."""
    expert = make_expert("HRMForaging-v0")

    def get_distribution(obs):
        grids = obs.long().numpy().astype(np.uint8)
        probs = torch.zeros(len(grids), 4)
        for i, grid in enumerate(grids):
            action = expert.act(grid, {})
            if i < wrong_first_rows:
                action = int(np.flatnonzero(~expert.optimal_actions(grid, {}))[0])
            probs[i, action] = 1.0
        policy.last_reasoning_steps = torch.ones(len(grids), dtype=torch.int32)
        return SimpleNamespace(distribution=SimpleNamespace(probs=probs))

    monkeypatch.setattr(policy, "get_distribution", get_distribution)


def test_tensor_transforms_match_the_numpy_ones():
    grids = np.random.default_rng(0).integers(0, 6, size=(3, 5, 5))
    for k in range(NUM_SYMMETRIES):
        assert np.array_equal(transform_grid_tensors(torch.as_tensor(grids), k).numpy(), transform_grids(grids, k))


def test_a_perfect_imitator_votes_exactly_the_expert_moves(monkeypatch):
    env = gym.make("HRMForaging-v0")
    policy = build_policy(env, "hrm", {"hrm_config": TINY, "decision_views": 8})
    stub_network(policy, monkeypatch)
    states = foraging_states(6)
    expert = make_expert("HRMForaging-v0")
    ties = sum(int(expert.optimal_actions(s, {}).sum() > 1) for s in states)
    assert ties > 20  # the tie-break case is exercised
    actions, segments = policy.greedy_actions(torch.as_tensor(states).float())
    assert actions.tolist() == [expert.act(s, {}) for s in states]
    assert segments.tolist() == [8] * len(states)  # one segment in each of the 8 views


def test_the_vote_overrides_a_move_few_views_back(monkeypatch):
    env = gym.make("HRMForaging-v0")
    policy = build_policy(env, "hrm", {"hrm_config": TINY, "decision_views": 8})
    states = foraging_states(2)
    stub_network(policy, monkeypatch, wrong_first_rows=5)
    expert = make_expert("HRMForaging-v0")
    voted, _ = policy.greedy_actions(torch.as_tensor(states).float())
    single, _ = policy.greedy_actions(torch.as_tensor(states).float(), views=1)
    for i, state in enumerate(states):
        optimal = expert.optimal_actions(state, {})
        assert optimal[int(voted[i])]  # the vote always lands on an optimal move
        assert optimal[int(single[i])] == (i >= 5)  # the observation alone is wrong on the first 5
    policy.view_keep = 0.1  # 1 of 8 views backs the wrong move: share 0.125 keeps it now
    kept, _ = policy.greedy_actions(torch.as_tensor(states).float())
    assert kept[:5].tolist() == single[:5].tolist()


def test_one_view_is_the_plain_greedy_action_and_predict_votes():
    torch.manual_seed(0)
    env = gym.make("HRMForaging-v0")
    policy = build_policy(env, "hrm", {"hrm_config": TINY, "decision_views": 4})
    obs = torch.as_tensor(foraging_states(1)).float()
    with torch.no_grad():
        plain = policy.get_distribution(obs).get_actions(deterministic=True)
        assert torch.equal(policy.greedy_actions(obs, views=1)[0], plain)
        model = PPO(
            HRMActorCriticPolicy, env, n_steps=8, batch_size=8, policy_kwargs={"hrm_config": TINY, "decision_views": 4}
        )
        model.policy.load_state_dict(policy.state_dict())
        predicted, _ = model.predict(obs.numpy(), deterministic=True)
        assert predicted.tolist() == policy.greedy_actions(obs)[0].tolist()


def test_views_round_trip_through_a_checkpoint(tmp_path):
    env = gym.make("HRMForaging-v0")
    policy = build_policy(env, "hrm", {"hrm_config": TINY, "decision_views": 8, "view_keep": 0.3})
    save_policy(tmp_path, policy, "HRMForaging-v0", {}, sb3_zip=False)
    loaded, _ = load_policy(tmp_path, "HRMForaging-v0", "cpu")
    assert (loaded.decision_views, loaded.view_keep) == (8, 0.3)
    obs = torch.as_tensor(foraging_states(1)).float()
    with torch.no_grad():
        assert torch.equal(loaded.greedy_actions(obs)[0], policy.greedy_actions(obs)[0])


@pytest.mark.parametrize(
    ("env_id", "kwargs", "message"),
    [
        ("HRMForaging-v0", {"decision_views": 9}, r"decision_views must be an integer 1\.\.8, got 9"),
        (
            "HRMForaging-v0",
            {"decision_views": 2, "view_keep": 1.5},
            r"view_keep must be a number in \[0, 1\], got 1\.5",
        ),
        ("HRMSudoku-v0", {"decision_views": 8}, "needs square grid observations and the 4 grid moves"),
    ],
)
def test_bad_view_settings_are_refused(env_id, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_policy(gym.make(env_id), "hrm", {"hrm_config": TINY, **kwargs})


def test_evaluate_views_flag(tmp_path, capsys):
    import json

    from agents.evaluate import main as evaluate_main

    env = gym.make("HRMForaging-v0")
    save_policy(tmp_path, build_policy(env, "hrm", {"hrm_config": TINY, "decision_views": 8}), "HRMForaging-v0", {},
                sb3_zip=False)  # fmt: skip
    capsys.readouterr()
    short = ["--episodes", "1", "--env-kwargs", '{"max_steps": 5}']
    for views, voters in ((None, 8), (1, 1)):
        extra = [] if views is None else ["--views", str(views)]
        assert evaluate_main(["--checkpoint", str(tmp_path), *short, "--json", *extra]) == 0
        report = json.loads(capsys.readouterr().out)
        # segments summed over the voting views: 1..halt_max_steps each
        assert voters <= report["mean_reasoning_steps"] <= voters * TINY["halt_max_steps"]
    assert evaluate_main(["--checkpoint", str(tmp_path), *short, "--views", "9"]) == 2
    assert "decision_views must be an integer 1..8, got 9" in capsys.readouterr().err


def test_action_scores_rank_the_chosen_move_first():
    torch.manual_seed(0)
    env = gym.make("HRMForaging-v0")
    policy = build_policy(env, "hrm", {"hrm_config": TINY, "decision_views": 8})
    obs = torch.as_tensor(foraging_states(2)).float()
    for views in (1, 8):
        with torch.no_grad():
            chosen, _ = policy.greedy_actions(obs, views=views)
        scores = policy.last_action_scores
        assert scores.shape == (len(obs), 4) and torch.equal(scores.argmax(1), chosen)
        rest = scores.scatter(1, chosen[:, None], -1.0)
        assert (rest <= 1.0).all() and (rest.max(1).values >= 0).all()  # the others keep their probabilities


class ScriptedPolicy:
    """An SB3-like policy with fixed action probabilities (right > left > down > up)."""

    device = torch.device("cpu")

    def get_distribution(self, obs):
        probs = torch.tensor([[0.1, 0.2, 0.3, 0.4]]).expand(len(obs), 4)
        return SimpleNamespace(distribution=SimpleNamespace(probs=probs))


def test_loop_escape_takes_untried_moves_on_revisits_per_episode():
    from agents.evaluate import LoopEscape

    escape = LoopEscape(ScriptedPolicy())
    grid = np.zeros((1, 4, 4), dtype=np.uint8)
    other = grid + 1
    taken = [int(escape(grid, [0])[0][0]) for _ in range(6)]
    assert taken == [3, 2, 1, 0, 3, 2]  # the policy's order, then its first choice again
    assert escape.escapes == 4
    assert escape(other, [0])[0].tolist() == [3]  # a new observation: the policy's own move
    assert escape(grid, [1])[0].tolist() == [3]  # another episode has its own memory
    escape.end_episode(0)
    assert escape(np.concatenate([grid, grid]), [0, 1])[0].tolist() == [3, 2]


def test_loop_escape_breaks_a_greedy_cycle_in_an_episode():
    """A policy that always walks up gets stuck at a wall to the step limit; LoopEscape walks on."""
    from agents.evaluate import LoopEscape, run_episodes

    class Recording(LoopEscape):
        def __call__(self, obs, episode_ids):
            self.seen.update(o.tobytes() for o in obs)
            return super().__call__(obs, episode_ids)

    class Stuck(ScriptedPolicy):
        def get_distribution(self, obs):
            probs = torch.tensor([[0.7, 0.1, 0.1, 0.1]]).expand(len(obs), 4)
            return SimpleNamespace(distribution=SimpleNamespace(probs=probs))

    seen_greedy = set()

    def greedy(obs):
        seen_greedy.update(o.tobytes() for o in obs)
        return np.zeros(len(obs), dtype=np.int64), np.ones(len(obs))

    kwargs, seeds = {"max_steps": 60}, [0, 1, 2]
    stuck = run_episodes(greedy, "HRMForaging-v0", kwargs, seeds=seeds)
    assert stuck["timeout_rate"] == 1.0
    escape = Recording(Stuck())
    escape.seen = set()
    run_episodes(escape, "HRMForaging-v0", kwargs, seeds=seeds)
    assert escape.escapes > 0 and escape.taken == {}  # ended episodes are forgotten
    assert len(escape.seen) > 3 * len(seen_greedy)  # it leaves the wall and explores


def test_greedy_decisions_memoise_by_observation_and_match_the_policy():
    from agents.evaluate import GreedyDecisions, LoopEscape, policy_actor

    torch.manual_seed(0)
    env = gym.make("HRMForaging-v0")
    policy = build_policy(env, "hrm", {"hrm_config": TINY, "decision_views": 8})
    policy.set_training_mode(False)
    obs = foraging_states(1)[:6]  # six distinct states of one expert episode
    batch = np.concatenate([obs, obs[:2]])  # two rows repeated within the batch
    shared = GreedyDecisions(policy)
    actions, scores, steps = shared(batch)
    assert shared.computed == 6  # each distinct observation reasoned on once
    plain, plain_steps = policy_actor(policy)(batch)
    assert actions.tolist() == plain.tolist() and steps.tolist() == plain_steps.tolist()
    torch.testing.assert_close(torch.as_tensor(scores[:6]), policy.last_action_scores[:6])  # batch rounding
    again, _, _ = shared(obs[::-1].copy())
    assert shared.computed == 6 and again.tolist() == actions[:6][::-1].tolist()  # all from the memo
    assert policy_actor(policy, decisions=shared)(obs)[0].tolist() == actions[:6].tolist()
    fresh = GreedyDecisions(policy, memoise=False)
    fresh(obs)
    fresh(obs)
    assert fresh.computed == 12 and fresh.memo == {}
    with pytest.raises(ValueError, match="deterministic=True"):
        policy_actor(policy, deterministic=False, decisions=shared)
    with pytest.raises(ValueError, match="same policy and views"):
        LoopEscape(policy, views=1, decisions=shared)


def test_run_episodes_without_state_labels_scores_the_same_episodes(monkeypatch):
    """label_states=False skips the expert's per-state labels only; the expert's episode length
    of a seeded reset is computed once and reused by later rows on the same seeds."""
    import agents.evaluate as evaluate
    from agents.rl.comparison import ExpertActor

    blind, seeds, kwargs = ExpertActor("blind", {}), [11, 12, 13, 14], {"max_steps": 80}
    labelled = evaluate.run_episodes(blind, "HRMForagingChase-v0", kwargs, seeds=seeds)
    assert labelled["expert_agreement"] is not None and labelled["optimal_action_rate"] is not None
    made = []
    real_make = evaluate.make_expert
    monkeypatch.setattr(evaluate, "make_expert", lambda *a, **k: made.append(a) or real_make(*a, **k))
    bare = evaluate.run_episodes(blind, "HRMForagingChase-v0", kwargs, seeds=seeds, label_states=False)
    assert bare["expert_agreement"] is None and bare["optimal_action_rate"] is None
    assert made == []  # no labelling experts, and the expert lengths came from the first call
    for key in ("success_rate", "caught_rate", "timeout_rate", "mean_path_ratio", "mean_episode_length"):
        assert bare[key] == labelled[key]
    fresh = evaluate.run_episodes(blind, "HRMForagingChase-v0", kwargs, seeds=[15], label_states=False)
    assert fresh["episodes"] == 1 and (made != []) == (fresh["success_rate"] == 1.0)
