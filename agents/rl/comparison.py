"""The PPO run's comparison: experts and policies on the same seeded episodes, dodge layouts, curves.

Every row plays the same episodes (lockstep, :func:`agents.evaluate.run_episodes`): the
enemy-blind expert (the floor), the enemy-aware planner (the ceiling), BC, PPO and PPO from
scratch. A greedy policy of the grid alone is deterministic and so are the envs: an episode that
comes back to a state cycles to the step limit, so BC and PPO are also scored through
:class:`agents.evaluate.LoopEscape` (a revisited observation gets the best move not yet taken).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from agents.evaluate import GreedyDecisions, LoopEscape, policy_actor, run_episodes
from hrm_gym.core.grid import AGENT, NEST, WALL

#: The comparison's rows, in table order.
COMPARISON_ROWS = ("blind expert", "planner (ceiling)", "bc", "bc + loop escape", "ppo", "ppo + loop escape",
                   "ppo scratch (mlp)")  # fmt: skip
#: The learned rows that are also scored with :class:`agents.evaluate.LoopEscape`.
LOOP_ESCAPE_ROWS = ("bc", "ppo")
#: The keys of every comparison row in metrics.json.
COMPARISON_KEYS = ("success_rate", "caught_rate", "timeout_rate", "mean_path_ratio", "mean_episode_length",
                   "mean_return", "mean_reasoning_steps", "episodes")  # fmt: skip


class ExpertActor:
    """Score an expert with ``run_episodes``: a batched actor that also reads the infos.

    The enemy-aware planner solves each layout once and caches a few solutions; lockstep
    evaluation interleaves hundreds of layouts, so one planner per layout is kept (LRU).
    """

    takes_info = True

    def __init__(self, kind: Literal["blind", "planner"], env_kwargs: dict[str, Any], keep: int = 300):
        from expert.chase import BlindChaseExpert, ChasePlannerExpert

        if kind not in ("blind", "planner"):
            raise ValueError(f"expert kind {kind!r}; allowed: 'blind', 'planner'")
        self.kind, self.keep = kind, keep
        self._make = (lambda: ChasePlannerExpert(**env_kwargs)) if kind == "planner" else None
        self._blind = BlindChaseExpert(**env_kwargs) if kind == "blind" else None
        self._planners: OrderedDict[tuple, Any] = OrderedDict()

    def _expert_for(self, obs: np.ndarray, info: dict[str, Any]):
        if self._blind is not None:
            return self._blind
        key = ((obs == WALL).tobytes(), tuple(info["nest_pos"]), tuple(info["food_pos"]))
        planner = self._planners.pop(key, None) or self._make()
        self._planners[key] = planner
        while len(self._planners) > self.keep:
            self._planners.popitem(last=False)
        return planner

    def __call__(self, obs: np.ndarray, infos: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        actions = np.array([self._expert_for(o, i).act(o, i) for o, i in zip(obs, infos)], dtype=np.int64)
        return actions, np.ones(len(obs))


def score(report: dict[str, Any]) -> dict[str, Any]:
    """The comparison keys of an evaluation report (absent ones as None)."""
    return {key: report.get(key) for key in COMPARISON_KEYS}


def compare(
    policies: dict[str, Any],
    env_id: str,
    env_kwargs: dict[str, Any],
    *,
    seeds=None,
    layouts=None,
    loop_escape: bool = False,
    decisions: dict[str, GreedyDecisions] | None = None,
) -> dict[str, dict[str, Any]]:
    """Comparison rows on the same episodes: both experts, then each policy (None = skipped).

    With ``loop_escape``, the :data:`LOOP_ESCAPE_ROWS` policies get a second row, ``NAME + loop
    escape``: the same greedy decisions except on revisited observations (``LoopEscape``).
    A policy's rows share one :class:`GreedyDecisions` (from ``decisions``, which is filled in
    for reuse by later rows): the loop-escape episodes retrace the greedy ones up to their
    first revisit, so they cost few new decisions.
    """
    decisions = {} if decisions is None else decisions
    episodes = {"seeds": seeds} if layouts is None else {"layouts": layouts}
    rows: dict[str, dict[str, Any]] = {}

    def row(name: str, act) -> None:  # one row, with a progress line (the whole comparison takes minutes)
        started = time.time()
        rows[name] = run_episodes(act, env_id, env_kwargs, **episodes, label_states=False)
        print(f"  {name}: success {rows[name]['success_rate']:.3f} ({time.time() - started:.0f}s)", flush=True)

    row("blind expert", ExpertActor("blind", env_kwargs))
    row("planner (ceiling)", ExpertActor("planner", env_kwargs))
    for name, policy in policies.items():
        if policy is not None:
            policy.set_training_mode(False)
            shared = decisions.setdefault(name, GreedyDecisions(policy))
            row(name, policy_actor(policy, decisions=shared))
            if loop_escape and name in LOOP_ESCAPE_ROWS:
                row(f"{name} + loop escape", LoopEscape(policy, decisions=shared))
    return {name: score(report) for name, report in rows.items()}


def episode_outcomes(act, env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int]) -> list[str]:
    """``success`` / ``caught`` / ``timeout`` of each seeded episode (lockstep, like ``run_episodes``)."""
    envs = [gym.make(env_id, **env_kwargs).unwrapped for _ in seeds]
    current = [env.reset(seed=int(seed)) for env, seed in zip(envs, seeds)]
    outcomes = [""] * len(seeds)
    running = list(range(len(seeds)))
    while running:
        obs = np.stack([current[i][0] for i in running])
        infos = [current[i][1] for i in running]
        actions = act(obs, infos)[0] if getattr(act, "takes_info", False) else act(obs)[0]
        still = []
        for j, i in enumerate(running):
            obs_i, _, terminated, truncated, info = envs[i].step(int(actions[j]))
            current[i] = (obs_i, info)
            if terminated or truncated:
                outcomes[i] = "caught" if info.get("caught") else ("timeout" if truncated else "success")
            else:
                still.append(i)
        running = still
    return outcomes


def dodge_layouts(
    policy, env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int], decisions: GreedyDecisions | None = None
) -> np.ndarray:
    """Start layouts of the episodes where the blind expert is caught and ``policy`` succeeds.

    For the README's side-by-side GIF (``agents.render --layouts``): the agent starts on the
    nest, so the layout is the first observation with the agent cell drawn as the nest.
    """
    policy.set_training_mode(False)
    ours = episode_outcomes(policy_actor(policy, decisions=decisions), env_id, env_kwargs, seeds)
    blind = episode_outcomes(ExpertActor("blind", env_kwargs), env_id, env_kwargs, seeds)
    env = gym.make(env_id, **env_kwargs)
    layouts = []
    for seed, mine, theirs in zip(seeds, ours, blind):
        if mine == "success" and theirs == "caught":
            obs, _ = env.reset(seed=int(seed))
            layouts.append(np.where(obs == AGENT, NEST, obs).astype(np.uint8))
    env.close()
    return np.stack(layouts) if layouts else np.zeros((0, *env.observation_space.shape), dtype=np.uint8)


def comparison_table(rows: dict[str, dict[str, Any]]) -> str:
    columns = ("success_rate", "caught_rate", "timeout_rate", "mean_path_ratio", "mean_episode_length",
               "mean_reasoning_steps")  # fmt: skip
    width = max(len(n) for n in rows)
    lines = [f"{'':{width}s} " + " ".join(f"{c.replace('mean_', '')[:13]:>13s}" for c in columns)]
    for name, row in rows.items():
        cells = [f"{'-':>13s}" if row.get(c) is None else f"{row[c]:13.3f}" for c in columns]
        lines.append(f"{name:{width}s} " + " ".join(cells))
    return "\n".join(lines)


def plot_curves(metrics: dict[str, Any], path: Path) -> None:
    """Validation success / caught rate against PPO steps (HRM from BC vs MLP from scratch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, history, style in (("HRM from BC", metrics["history"], "C0-"),
                                 ("MLP from scratch", metrics.get("scratch_history") or [], "C2--")):  # fmt: skip
        if not history:
            continue
        steps = [row["timesteps"] for row in history]
        axes[0].plot(steps, [row["success_rate"] for row in history], style, label=name)
        axes[1].plot(steps, [row["caught_rate"] or 0.0 for row in history], style, label=name)
        if name == "HRM from BC" and any(row.get("foraging_success_rate") is not None for row in history):
            foraging = [(row["timesteps"], row["foraging_success_rate"]) for row in history
                        if row.get("foraging_success_rate") is not None]  # fmt: skip
            axes[0].plot(*zip(*foraging), "C1-.", label="HRM from BC on Foraging (no enemy)")
    for ax, rows_key, title in ((axes[0], "success_rate", "validation success"), (axes[1], "caught_rate", "caught")):
        for ref, color in (("blind expert", "grey"), ("planner (ceiling)", "green")):
            value = metrics["comparison"][ref][rows_key]
            ax.axhline(value, color=color, linestyle=":", label=f"{ref} (test)")
        ax.set_title(title)
        ax.set_xlabel("PPO steps (thousands)")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1000:.0f}"))
        ax.set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
