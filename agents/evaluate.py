"""Greedy rollouts of a policy, scored against the expert.

    python -m agents.evaluate --checkpoint DIR [--env ID] [--env-kwargs JSON] [--episodes N]
                              [--seed S] [--layouts FILE.npz] [--views V] [--json]
                              [--max-segments M] [--carry-plan] [--loop-escape]
    python -m agents.evaluate --checkpoint RUN --env HRMMaze-v0 --env-kwargs '{"size": 31}' --views 1 --max-segments 32

Episodes run in lockstep (one batched policy call per step for all running episodes). Every
visited state is labelled by the env's expert, so besides success the report says how often the
policy picked the expert's action (``expert_agreement``) and an optimal one
(``optimal_action_rate``). ``mean_path_ratio`` is steps taken over the expert's steps on the same
layout, over successful episodes. ``mean_reasoning_steps`` is the mean number of HRM segments
per decision (1 for a plain policy), summed over the symmetric views when they vote
(``--views``, default the checkpoint's own ``decision_views``).

An HRM policy reads each grid at its own size: a checkpoint whose model has no learned positions
(conv blocks, or RoPE) decides on grids of another size than it trained on (``--env-kwargs``,
e.g. a larger maze), and may think longer there (``--max-segments``: the ACT maximum at test
time). ``--carry-plan`` starts every decision from the states the episode's previous one ended
with (:class:`CarriedPlan`).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import load_env_creator

import hrm_gym  # noqa: F401  (registers the envs)
from agents.policy import HRMActorCriticPolicy
from expert import make_expert
from expert.generate import episode_seed

#: Split index of evaluation episodes in :func:`expert.generate.episode_seed` (train 0, val 1).
TEST_SPLIT = 2

BatchPolicy = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class GreedyDecisions:
    """A policy's greedy decisions, ``obs -> (actions, move scores, reasoning steps)``, memoised.

    An eval-mode greedy decision is a function of the observation alone (the HRM halts by its Q
    head, deterministically), so rows of a comparison that score the same policy on the same
    episodes (greedy, then :class:`LoopEscape`; Chase, then the dodge-layout search) meet the
    same observations again: with one shared instance each observation is reasoned on once.
    (Scores may differ from a fresh call in the last float bits, as any two batch compositions
    do in lockstep evaluation.)
    ``memoise=False`` computes every call afresh (the policy may change between calls: training).
    ``scores`` rank the moves, the chosen one first (:attr:`HRMActorCriticPolicy.last_action_scores`,
    or the action probabilities of another SB3 policy). ``computed`` counts reasoned rows.
    """

    def __init__(self, policy, views: int | None = None, memoise: bool = True):
        self.policy, self.views, self.memoise = policy, views, memoise
        self.memo: dict[bytes, tuple[int, np.ndarray, float]] = {}
        self.computed = 0

    def _compute(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.computed += len(obs)
        with torch.no_grad():
            obs_t = torch.as_tensor(obs, device=self.policy.device)
            if isinstance(self.policy, HRMActorCriticPolicy):
                actions = self.policy.greedy_actions(obs_t, self.views)[0].cpu().numpy()
                scores = self.policy.last_action_scores.numpy()
                steps = self.policy.last_reasoning_steps.numpy().astype(np.float64)
            else:
                scores = self.policy.get_distribution(obs_t).distribution.probs.cpu().numpy()
                actions, steps = scores.argmax(1), np.ones(len(obs))
        return actions, scores, steps

    def __call__(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.memoise:
            return self._compute(obs)
        keys = [row.tobytes() for row in obs]
        missing = list({key: i for i, key in enumerate(keys) if key not in self.memo}.values())
        if missing:
            actions, scores, steps = self._compute(obs[missing])
            for j, i in enumerate(missing):
                self.memo[keys[i]] = (int(actions[j]), scores[j], float(steps[j]))
        rows = [self.memo[key] for key in keys]
        return (np.array([r[0] for r in rows], dtype=np.int64), np.stack([r[1] for r in rows]),
                np.array([r[2] for r in rows], dtype=np.float64))  # fmt: skip


def policy_actor(
    policy, deterministic: bool = True, views: int | None = None, decisions: GreedyDecisions | None = None
) -> BatchPolicy:
    """A batched ``obs -> (actions, reasoning_steps)`` function of an SB3 policy.

    Greedy decisions are :class:`GreedyDecisions` (HRM: :meth:`HRMActorCriticPolicy.greedy_actions`,
    the policy's own vote of symmetric views, or ``views`` of them, 1 = the observation alone):
    ``decisions``, a shared memoised one, or a fresh one that is not.
    """
    if deterministic:
        if decisions is not None and (decisions.policy is not policy or decisions.views != views):
            raise ValueError("decisions= must be a GreedyDecisions of the same policy and views")
        decisions = decisions or GreedyDecisions(policy, views, memoise=False)

        def act_greedy(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            actions, _, steps = decisions(obs)
            return actions, steps

        return act_greedy
    if decisions is not None:
        raise ValueError("decisions= memoises greedy decisions: it needs deterministic=True")

    def act(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            actions = policy.get_distribution(torch.as_tensor(obs, device=policy.device)).get_actions().cpu().numpy()
        if isinstance(policy, HRMActorCriticPolicy) and policy.last_reasoning_steps is not None:
            steps = policy.last_reasoning_steps.numpy().astype(np.float64)
        else:
            steps = np.ones(len(obs))
        return actions, steps

    return act


class LoopEscape:
    """Greedy decisions that do not repeat themselves forever within an episode.

    A greedy policy of the grid alone is deterministic, and so are the envs: once an episode
    meets the same observation twice with the same hidden state (Chase's enemy pace phase),
    it cycles until the step limit (most of a greedy Chase policy's timeouts: README, PPO).
    This rule remembers, per episode, the
    moves taken from each observation; when an observation comes back, it takes the
    best-ranked move (the policy's own ranking, :class:`GreedyDecisions` ``scores``) not yet
    taken from it, and after all
    four the policy's first choice again. It reads only the agent's own observations, is
    deterministic, and leaves every first visit to the policy; the episode's memory is
    dropped when it ends (``end_episode``). ``escapes`` counts the overridden decisions.
    ``decisions``: a shared :class:`GreedyDecisions` of the same policy (default: its own,
    not memoised).
    """

    takes_episode_ids = True

    def __init__(self, policy, views: int | None = None, decisions: GreedyDecisions | None = None):
        if decisions is not None and (decisions.policy is not policy or decisions.views != views):
            raise ValueError("decisions= must be a GreedyDecisions of the same policy and views")
        self.policy, self.views = policy, views
        self.decisions = decisions or GreedyDecisions(policy, views, memoise=False)
        self.taken: dict[int, dict[bytes, set[int]]] = {}
        self.escapes = 0

    def __call__(self, obs: np.ndarray, episode_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        actions, scores, steps = self.decisions(obs)
        actions = actions.copy()
        for row, episode in enumerate(episode_ids):
            tried = self.taken.setdefault(episode, {}).setdefault(obs[row].tobytes(), set())
            if tried:  # a revisit: the first move not yet taken from here, in the policy's order
                order = [int(a) for a in np.argsort(-scores[row], kind="stable")]
                untried = [a for a in order if a not in tried]
                if not untried:
                    tried.clear()
                choice = untried[0] if untried else order[0]
                self.escapes += int(choice != actions[row])
                actions[row] = choice
            tried.add(int(actions[row]))
        return actions, steps

    def end_episode(self, episode_id: int) -> None:
        self.taken.pop(episode_id, None)


class CarriedPlan:
    """Greedy HRM decisions (one view) that keep the plan from one step of an episode to the next.

    Each decision starts reasoning from the high- and low-level states the same episode's previous
    decision halted with (the first from the model's initial states), so the policy refines its
    plan as the agent moves instead of recomputing it: with ACT it can halt after fewer segments
    a step. The states of an episode are dropped when it ends (``end_episode``).
    """

    takes_episode_ids = True

    def __init__(self, policy: HRMActorCriticPolicy):
        if not isinstance(policy, HRMActorCriticPolicy):
            raise ValueError("a carried plan needs an HRM policy checkpoint")
        self.policy = policy
        self.states: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, obs: np.ndarray, episode_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            obs_t = torch.as_tensor(obs, device=self.policy.device)
            start = self.policy.fresh_state(obs_t)
            for row, episode in enumerate(episode_ids):
                if episode in self.states:
                    start.z_H[row], start.z_L[row] = self.states[episode]
            actions, steps = self.policy.greedy_actions(obs_t, 1, start=start)
            state = self.policy.last_state
        for row, episode in enumerate(episode_ids):
            self.states[episode] = (state.z_H[row], state.z_L[row])
        return actions.cpu().numpy(), steps.numpy().astype(np.float64)

    def end_episode(self, episode_id: int) -> None:
        self.states.pop(episode_id, None)


def test_seeds(seed: int, episodes: int) -> list[int]:
    """Reset seeds of evaluation episodes: a stream of their own, apart from train and val."""
    return [episode_seed(seed, TEST_SPLIT, i) for i in range(episodes)]


def _expert_steps(env_id: str, env_kwargs: dict, reset_kwargs: dict) -> int:
    """Steps of the expert's episode from this reset (the path ratio's denominator)."""
    env = gym.make(env_id, **env_kwargs).unwrapped
    expert = make_expert(env_id, **env_kwargs)
    expert.reset()
    obs, info = env.reset(**reset_kwargs)
    while True:
        obs, _, terminated, truncated, info = env.step(expert.act(obs, info))
        if terminated or truncated:
            return int(info["steps"])


#: :func:`_expert_steps` of seeded resets, by (env id, env kwargs, seed): every row of a
#: comparison plays the same seeds, and the expert's episode is the same each time.
_SEEDED_EXPERT_STEPS: dict[tuple[str, str, int], int] = {}
_SEEDED_EXPERT_STEPS_KEPT = 20_000


def _expert_steps_memoised(env_id: str, env_kwargs: dict, reset_kwargs: dict) -> int:
    if set(reset_kwargs) != {"seed"}:  # a fixed layout: not worth a key
        return _expert_steps(env_id, env_kwargs, reset_kwargs)
    key = (env_id, json.dumps(env_kwargs, sort_keys=True, default=str), int(reset_kwargs["seed"]))
    if key not in _SEEDED_EXPERT_STEPS:
        if len(_SEEDED_EXPERT_STEPS) >= _SEEDED_EXPERT_STEPS_KEPT:
            _SEEDED_EXPERT_STEPS.clear()
        _SEEDED_EXPERT_STEPS[key] = _expert_steps(env_id, env_kwargs, reset_kwargs)
    return _SEEDED_EXPERT_STEPS[key]


def _act(act: BatchPolicy, obs: np.ndarray, infos: list[dict[str, Any]], episode_ids: list[int]):
    """Call ``act`` with what it asks for: the infos, the episode ids, or the observations alone."""
    if getattr(act, "takes_info", False):  # e.g. an expert that reads info["steps"]
        return act(obs, infos)
    if getattr(act, "takes_episode_ids", False):  # e.g. LoopEscape's per-episode memory
        return act(obs, episode_ids)
    return act(obs)


def _play_chunk(
    act: BatchPolicy,
    env_id: str,
    env_kwargs: dict[str, Any],
    chunk: list[dict],
    first_id: int,
    totals: dict,
    label_states: bool = True,
) -> list[dict[str, Any]]:
    """Play the episodes ``chunk`` (reset kwargs) in lockstep; count the decisions into ``totals``."""
    envs = [gym.make(env_id, **env_kwargs).unwrapped for _ in chunk]
    experts = [make_expert(env_id, **env_kwargs) for _ in chunk] if label_states else []
    for expert in experts:
        expert.reset()
    current = [env.reset(**reset) for env, reset in zip(envs, chunk)]
    running = list(range(len(chunk)))
    returns = [0.0] * len(chunk)
    results: list[dict[str, Any] | None] = [None] * len(chunk)
    while running:
        obs_batch = np.stack([current[i][0] for i in running])
        actions, reasoning = _act(act, obs_batch, [current[i][1] for i in running], [first_id + i for i in running])
        still = []
        for j, i in enumerate(running):
            (obs, info), action = current[i], int(actions[j])
            if label_states:
                totals["agree"] += int(action == experts[i].act(obs, info))
                totals["optimal"] += int(experts[i].optimal_actions(obs, info)[action])
            totals["decisions"] += 1
            totals["reasoning"] += float(reasoning[j])
            obs, reward, terminated, truncated, info = envs[i].step(action)
            returns[i] += reward
            current[i] = (obs, info)
            if not (terminated or truncated):
                still.append(i)
                continue
            if getattr(act, "takes_episode_ids", False):
                act.end_episode(first_id + i)
            caught = bool(info.get("caught", False))
            solved = info.get("solved") if "solved" in info else (terminated and not caught)
            results[i] = {"success": bool(solved), "caught": caught, "timeout": bool(truncated),
                          "steps": int(info["steps"]), "return": returns[i]}  # fmt: skip
        running = still
    for env in envs:
        env.close()
    return results


def run_episodes(
    act: BatchPolicy,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    *,
    seeds: Sequence[int] | None = None,
    layouts: np.ndarray | None = None,
    batch_size: int = 256,
    label_states: bool = True,
) -> dict[str, Any]:
    """Roll ``act`` out on the episodes given by ``seeds`` or fixed ``layouts``; return metrics.

    ``label_states``: ask the env's expert about every visited state (``expert_agreement``,
    ``optimal_action_rate``); False leaves both None, for callers that read success and path
    ratio only (the Chase planner's labels cost most of an evaluation's time).

    An ``act`` with a true ``takes_info`` attribute is called as ``act(obs, infos)`` (the infos
    of the running episodes), so experts that read ``info`` can be scored the same way; one with
    a true ``takes_episode_ids`` as ``act(obs, episode_ids)`` (the running episodes' indices,
    unique within the call), and its ``end_episode(id)`` is called when an episode ends
    (:class:`LoopEscape`).
    """
    env_kwargs = dict(env_kwargs or {})
    if (seeds is None) == (layouts is None):
        raise ValueError("give exactly one of seeds or layouts")
    option_key = "puzzle" if env_id == "HRMSudoku-v0" else "layout"
    resets = (
        [{"seed": int(s)} for s in seeds]
        if seeds is not None
        else [{"seed": i, "options": {option_key: layout}} for i, layout in enumerate(layouts)]
    )
    totals = {"agree": 0, "optimal": 0, "decisions": 0, "reasoning": 0.0}
    outcomes: list[dict[str, Any]] = []
    for start in range(0, len(resets), batch_size):
        chunk = resets[start : start + batch_size]
        played = _play_chunk(act, env_id, env_kwargs, chunk, start, totals, label_states)
        for reset, result in zip(chunk, played):
            if result["success"]:
                result["expert_steps"] = _expert_steps_memoised(env_id, env_kwargs, reset)
            outcomes.append(result)
    return _episode_report(env_id, env_kwargs, outcomes, totals, label_states)


def _episode_report(
    env_id: str, env_kwargs: dict, outcomes: list[dict], totals: dict, labelled: bool = True
) -> dict[str, Any]:
    successes = [o for o in outcomes if o["success"]]
    n = len(outcomes)
    decisions = max(1, totals["decisions"])
    report = {
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "episodes": n,
        "success_rate": sum(o["success"] for o in outcomes) / n,
        "timeout_rate": sum(o["timeout"] for o in outcomes) / n,
        "mean_path_ratio": (float(np.mean([o["steps"] / o["expert_steps"] for o in successes])) if successes else None),
        "mean_episode_length": float(np.mean([o["steps"] for o in outcomes])),
        "mean_return": float(np.mean([o["return"] for o in outcomes])),
        "expert_agreement": totals["agree"] / decisions if labelled else None,
        "optimal_action_rate": totals["optimal"] / decisions if labelled else None,
        "mean_reasoning_steps": totals["reasoning"] / decisions,
        "decisions": totals["decisions"],
    }
    if env_id == "HRMForagingChase-v0":
        report["caught_rate"] = sum(o["caught"] for o in outcomes) / n
    return report


def load_layouts(path: str | Path, env_id: str, env_kwargs: dict[str, Any] | None = None) -> np.ndarray:
    """The fixed layouts of an ``.npz`` (array ``layouts``; for Sudoku ``puzzles``), shape ``(n, H, W)``, n >= 1.

    With ``env_kwargs``, each layout is also checked against ``env_id`` made with them (its shape
    and the env's own layout rules). Raises ``FileNotFoundError`` or ``ValueError`` naming the file.
    """
    key = "puzzles" if env_id == "HRMSudoku-v0" else "layouts"
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no layouts file at {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an .npz file (numpy.savez's zip of arrays); {env_id} needs one with {key!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            files = list(data.files)
            layouts = np.asarray(data[key]) if key in files else None
    except Exception as exc:  # a damaged zip, a member that is not an .npy, an object array
        raise ValueError(f"{path} is not a readable .npz of layouts: {type(exc).__name__}: {exc}") from exc
    if layouts is None:
        raise ValueError(f"{path} has no array {key!r} (it holds {files}); {env_id} needs {key!r}")
    if layouts.ndim != 3:
        raise ValueError(f"{path}: {key!r} must be a 3-D array (n, H, W), got shape {layouts.shape}")
    if len(layouts) == 0:
        raise ValueError(f"{path}: {key!r} holds no layouts (shape {layouts.shape}); at least one is needed")
    if env_kwargs is not None:
        env = gym.make(env_id, **env_kwargs).unwrapped
        shape = tuple(env.observation_space.shape)
        if layouts.shape[1:] != shape:
            raise ValueError(
                f"{path}: {key!r} has shape {layouts.shape}; {env_id} with env kwargs {json.dumps(env_kwargs)} "
                f"needs (n, {', '.join(map(str, shape))})"
            )
        option_key = "puzzle" if env_id == "HRMSudoku-v0" else "layout"
        try:
            for i, layout in enumerate(layouts):
                try:
                    env.reset(seed=i, options={option_key: layout})
                except ValueError as exc:
                    raise ValueError(f"{path}: {key}[{i}] does not fit {env_id}: {exc}") from exc
        finally:
            env.close()
    return layouts


# ---- command-line input checks (shared with agents.render) -----------------------------
def registered_env_ids() -> list[str]:
    """The env ids the command-line tools take: the registered ``HRM*`` ids."""
    return sorted(env_id for env_id in gym.registry if env_id.startswith("HRM"))


def env_id_arg(text: str) -> str:
    """An ``--env`` value: a registered ``HRM*`` id (``module:Env`` ids, which gymnasium imports, are refused)."""
    allowed = registered_env_ids()
    if text not in allowed:
        raise argparse.ArgumentTypeError(f"unknown env id {text!r}; allowed: {', '.join(allowed)}")
    return text


def env_kwargs_arg(text: str) -> dict[str, Any]:
    """An ``--env-kwargs`` value: a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"max_steps\": 50}}', got {text!r}")
    return value


def check_env_kwargs(env_id: str, env_kwargs: dict[str, Any], what: str = "--env-kwargs") -> None:
    """Make ``env_id`` with ``env_kwargs`` once; a ``ValueError`` naming them (as ``what``) if that fails.

    Only the env constructor's own keywords are taken (not ``render_mode``, nor ``gym.make``'s
    options such as ``max_episode_steps``, which the tools would ignore).
    """
    creator = gym.spec(env_id).entry_point
    if isinstance(creator, str):
        creator = load_env_creator(creator)
    params = inspect.signature(creator).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        allowed = [name for name in params if name not in ("self", "render_mode")]
        unknown = [name for name in env_kwargs if name not in allowed]
        if unknown:
            raise ValueError(
                f"{what} {json.dumps(env_kwargs)}: {env_id} takes no {', '.join(map(repr, unknown))}; "
                f"its kwargs: {', '.join(allowed)}"
            )
    try:
        gym.make(env_id, **env_kwargs).close()
    except (TypeError, ValueError, gym.error.Error) as exc:
        raise ValueError(f"{what} {json.dumps(env_kwargs)} do not fit {env_id}: {exc}") from exc


def load_checked_policy(path: str | Path, env_id: str | None = None):
    """:func:`agents.checkpoint.load_policy`, with a ``CheckpointError`` for any checkpoint it cannot rebuild.

    The recorded env must be a registered ``HRM*`` id (never a ``module:Env`` to import).
    """
    from agents.checkpoint import CheckpointError, load_policy, read_checkpoint

    record = read_checkpoint(path)
    trained_on = record.get("env_id")
    if trained_on not in registered_env_ids():
        raise CheckpointError(
            f"{record['path']} was saved for env {trained_on!r}, which is not registered here; "
            f"allowed: {', '.join(registered_env_ids())}"
        )
    try:
        check_env_kwargs(trained_on, record["env_kwargs"], f"{record['path']}: its env kwargs")
        return load_policy(path, env_id)
    except (TypeError, KeyError, gym.error.Error) as exc:  # damaged policy facts
        raise CheckpointError(f"{record['path']}: cannot rebuild its policy: {type(exc).__name__}: {exc}") from exc
    except CheckpointError:
        raise
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc


def format_table(rows: dict[str, dict[str, Any]]) -> str:
    """A short fixed-width table of evaluation reports, one row per named report."""
    columns = [
        "success_rate",
        "caught_rate",
        "mean_path_ratio",
        "expert_agreement",
        "optimal_action_rate",
        "mean_reasoning_steps",
        "episodes",
    ]
    present = [c for c in columns if any(c in r for r in rows.values())]
    width = max(12, *(len(name) for name in rows))
    head = f"{'':{width}s} " + " ".join(f"{c[:14]:>14s}" for c in present)
    lines = [head]
    for name, row in rows.items():
        cells = []
        for c in present:
            value = row.get(c)
            cells.append(
                f"{'-':>14s}" if value is None else (f"{value:14.4f}" if isinstance(value, float) else f"{value:>14}")
            )
        lines.append(f"{name:{width}s} " + " ".join(cells))
    return "\n".join(lines)


def set_halt_threshold(policy: HRMActorCriticPolicy, threshold: float) -> None:
    """Test-time ACT rule: halt when the Q head's probability of "done" exceeds ``threshold``."""
    if policy.hrm.config.q_target != "none":
        raise ValueError(f"--halt-threshold needs a model with q_target='none', got {policy.hrm.config.q_target!r}")
    policy.hrm.config = policy.hrm.config.replace(halt_threshold=threshold)


def main(argv: list[str] | None = None) -> int:
    from agents.checkpoint import CheckpointError

    parser = argparse.ArgumentParser(
        prog="python -m agents.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True, help="a run directory or its policy.pt")
    parser.add_argument("--env", type=env_id_arg, default=None,
                        help="a registered HRM* env id (default: the one it was trained on)")  # fmt: skip
    parser.add_argument("--env-kwargs", type=env_kwargs_arg, default=None, help="JSON object of env kwargs")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--layouts", default=None, help=".npz with array 'layouts' (Sudoku: 'puzzles')")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--views", type=int, default=None,
                        help="HRM: symmetric views that vote on each greedy decision (default: the checkpoint's; "
                             "1 = the observation alone)")  # fmt: skip
    parser.add_argument("--max-segments", type=int, default=None,
                        help="HRM: the most reasoning segments a decision may take (default: as trained); "
                             "more than trained = thinking longer, e.g. on larger grids")  # fmt: skip
    parser.add_argument("--halt-threshold", type=float, default=None,
                        help="HRM with ACT: halt a decision when the Q head's probability that it is done "
                             "exceeds this (default: the checkpoint's, 0.5); higher = think longer")  # fmt: skip
    parser.add_argument("--carry-plan", action="store_true",
                        help="HRM, one view: every decision starts from the states the episode's previous "
                             "decision ended with (CarriedPlan), instead of from scratch")  # fmt: skip
    parser.add_argument("--loop-escape", action="store_true",
                        help="on an observation met before in the episode, take the best move not yet taken "
                             "from it (LoopEscape: greedy policies cycle forever otherwise)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.layouts and args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    if args.max_segments is not None and args.max_segments < 1:
        parser.error(f"--max-segments must be >= 1, got {args.max_segments}")
    if args.carry_plan and (args.loop_escape or (args.views or 1) != 1):
        parser.error("--carry-plan decides on the observation alone: it takes neither --loop-escape nor --views > 1")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    try:
        policy, record = load_checked_policy(args.checkpoint, args.env)
        env_id = args.env or record["env_id"]
        if args.env_kwargs is not None:
            env_kwargs = args.env_kwargs
            check_env_kwargs(env_id, env_kwargs)
        else:
            env_kwargs = record["env_kwargs"] if env_id == record["env_id"] else {}
        layouts = load_layouts(args.layouts, env_id, env_kwargs) if args.layouts else None
        policy.set_training_mode(False)
        hrm_only = {"--views": args.views, "--max-segments": args.max_segments, "--carry-plan": args.carry_plan or None,
                    "--halt-threshold": args.halt_threshold}  # fmt: skip
        for flag, value in hrm_only.items():
            if value is not None and not isinstance(policy, HRMActorCriticPolicy):
                raise ValueError(f"{flag} needs an HRM policy checkpoint")
        if args.max_segments is not None:
            policy.max_segments = args.max_segments
        if args.halt_threshold is not None:
            set_halt_threshold(policy, args.halt_threshold)
        act = policy_actor(policy, views=args.views)  # greedy_actions checks an overridden view count
        if args.loop_escape:
            act = LoopEscape(policy, views=args.views)
        if args.carry_plan:
            act = CarriedPlan(policy)
        if layouts is not None:
            report = run_episodes(act, env_id, env_kwargs, layouts=layouts)
        else:
            report = run_episodes(act, env_id, env_kwargs, seeds=test_seeds(args.seed, args.episodes))
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report["checkpoint"] = record["path"]
    if args.loop_escape:
        report["loop_escapes"] = act.escapes
    if args.json:
        print(json.dumps(report))
    else:
        print(format_table({record["policy_type"]: report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
