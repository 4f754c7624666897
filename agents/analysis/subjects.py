"""What the analysis looks at: a checkpoint of any trainer turned into a :class:`Subject`.

A subject is the reasoning model (the HRM-ACT protocol: ``reason``, traces), the inputs it is
analysed on, how an answer of the output head is scored, and the difficulty of every input.

- puzzle checkpoints (``model.pt``): the task's puzzles from ``--layouts`` or, by default, the
  checkpoint's first eval set drawn afresh with the held-out seed :mod:`agents.solve` uses;
  scored by the task's own metrics (exact, valid, cell accuracy), as :mod:`agents.puzzles.engine`
  scores them. Difficulty: maze path length and detour, Sudoku empty cells and backtracks.
- policy checkpoints (``policy.pt`` of BC or PPO): the states of expert episodes of the env (the
  evaluation seeds of :mod:`agents.evaluate`, or ``--layouts``); scored by agreement with the
  expert's action and the optimal-action rate. Difficulty: the expert's steps left to the end of
  the episode (Sudoku: empty cells). An SB3 ``MlpPolicy`` has no reasoning model: ``model`` is None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

#: Inputs collected per analysed one before choosing (policies: expert states of more episodes).
STATE_POOL = 4
NO_REASONING = (
    "{path} is an SB3 MlpPolicy checkpoint: it has no reasoning model (no H/L states, segments, "
    "halting or intermediate answers), so only params and flops_per_decision apply"
)


class AnalysisError(ValueError):
    """A checkpoint, an input file or an option the analysis cannot use (one line)."""


@dataclass
class Subject:
    """A model and the inputs it is analysed on (see the module docstring)."""

    label: str  # e.g. "maze puzzle model (hrm)"
    kind: str  # "puzzle" or "policy"
    domain: str  # the task or env its inputs belong to (a control must share it)
    checkpoint: str
    module: nn.Module  # what params and FLOPs are counted on (the policy, or the puzzle model)
    model: nn.Module | None  # the reasoning model; None: none (SB3 MlpPolicy)
    segments: int = 1  # the trained maximum of segments
    inputs: torch.Tensor | None = None  # model-ready tokens, one row per input
    data: dict[str, np.ndarray] = field(default_factory=dict)  # grids and targets (shared with a control)
    scorer: Callable[[torch.Tensor], dict[str, float]] | None = None  # logits of every input -> scores
    difficulty: dict[str, np.ndarray] = field(default_factory=dict)  # measure -> (N,); the first is the main one
    source: str = ""  # where the inputs come from
    note: str | None = None  # why parts of the analysis do not apply
    one_decision: Callable[[], Any] | None = None  # one decision of a model without reasoning (FLOPs)


def checkpoint_kind(checkpoint: str | Path) -> str:
    """``"puzzle"`` or ``"policy"``: which trainer wrote ``checkpoint`` (a run directory, a ``.pt``
    file or ``pretrained:NAME``)."""
    from agents.checkpoint import FORMAT as POLICY_FORMAT
    from agents.checkpoint import POLICY_FILE
    from agents.pretrained import PretrainedError, resolve
    from agents.puzzles.checkpoint import FORMAT as PUZZLE_FORMAT
    from agents.puzzles.checkpoint import MODEL_FILE

    try:
        path = Path(resolve(checkpoint))
    except PretrainedError as exc:
        raise AnalysisError(str(exc)) from None
    if path.is_dir():
        for name, kind in ((MODEL_FILE, "puzzle"), (POLICY_FILE, "policy")):
            if (path / name).is_file():
                return kind
        raise AnalysisError(f"{path} holds neither {MODEL_FILE} (puzzle trainer) nor {POLICY_FILE} (BC, PPO)")
    if not path.is_file():
        raise AnalysisError(f"no checkpoint at {path}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # refused unpickling, truncated file, not a torch file
        raise AnalysisError(f"{path} is not a readable checkpoint (read as data only): {type(exc).__name__}") from None
    kinds = {PUZZLE_FORMAT: "puzzle", POLICY_FORMAT: "policy"}
    fmt = record.get("format") if isinstance(record, dict) else None
    if fmt not in kinds:
        raise AnalysisError(f"{path} is not a checkpoint of a trainer here (formats {sorted(kinds)})")
    return kinds[fmt]


def load_subject(
    checkpoint: str | Path,
    *,
    env: str | None = None,
    layouts: str | Path | None = None,
    n: int = 256,
    seed: int = 12345,
    device: str | torch.device = "cpu",
    data: dict[str, np.ndarray] | None = None,
) -> Subject:
    """The subject of ``checkpoint``; ``data`` (another subject's) reuses its inputs (a control)."""
    if checkpoint_kind(checkpoint) == "puzzle":
        if env is not None:
            raise AnalysisError(
                "--env picks the env of a policy checkpoint; a puzzle checkpoint takes --layouts FILE.npz "
                "(default: its first eval set, drawn afresh)"
            )
        return puzzle_subject(checkpoint, layouts, n, device, data)
    return policy_subject(checkpoint, env, layouts, n, seed, device, data)


# ---- puzzle checkpoints ------------------------------------------------------------------
def puzzle_subject(
    checkpoint: str | Path, layouts: str | Path | None, n: int, device, data: dict[str, np.ndarray] | None
) -> Subject:
    from agents.puzzles.checkpoint import load_checkpoint
    from agents.puzzles.engine import check_model_reads

    model, task, record = load_checkpoint(checkpoint, device=device)
    source = "the inputs of the analysed checkpoint"
    if data is None:
        data, source = puzzle_inputs(task, record, layouts, n)
    grids, labels = data["grids"], data["labels"]
    check_model_reads(model, grids.shape[1:])

    def score(logits: torch.Tensor) -> dict[str, float]:
        predictions = logits.float().argmax(-1).reshape(grids.shape).cpu().numpy()
        scores = task.metrics(grids, predictions, labels)
        names = {"exact": "exact_accuracy", "valid": "valid_rate", "cell_accuracy": "cell_accuracy"}
        return {name: float(np.mean(scores[key])) for key, name in names.items()}

    return Subject(
        label=f"{task.name} puzzle model ({record['model']})",
        kind="puzzle",
        domain=f"the {task.name} task",
        checkpoint=record["path"],
        module=model,
        model=model,
        segments=int(model.config.halt_max_steps),
        inputs=torch.as_tensor(grids.astype(np.int64), device=device),
        data=data,
        scorer=score,
        difficulty=puzzle_difficulty(task.name, grids, labels),
        source=source,
    )


def puzzle_inputs(task, record: dict[str, Any], layouts: str | Path | None, n: int) -> tuple[dict, str]:
    """``({grids, labels}, source)``: the first ``n`` puzzles of ``layouts``, or ``n`` fresh ones of
    the checkpoint's first eval set at its held-out seed (as ``agents.solve`` draws them)."""
    from agents.puzzles.data import make_dataset

    if layouts is not None:
        from agents.solve import read_puzzles

        raw = read_puzzles(layouts, task.array_name)
        grids = task.check_inputs(raw, f"{layouts}:{task.array_name}")[:n]
        return {"grids": grids, "labels": task.targets(grids)}, f"{layouts} ({len(grids)} puzzles)"
    from agents.solve import eval_config
    from agents.train_puzzle import check_eval_sets, held_out_seed

    config, where = eval_config(task, record)
    spec = check_eval_sets(task, config)[0]
    seed = held_out_seed(config.data_seed, 0)
    made = make_dataset(task, spec["params"], n, seed)
    source = f"{n} fresh puzzles of eval set {spec['name']!r} of {where} (held-out seed {seed})"
    return {"grids": made["inputs"], "labels": made["labels"]}, source


def puzzle_difficulty(task: str, grids: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Difficulty measures per puzzle, the main one first: maze path length (moves) and detour
    (path length minus the start-goal Manhattan distance); Sudoku empty cells and backtracks."""
    if task == "maze":
        from hrm_gym.core.grid import GOAL, START

        length = labels.reshape(len(labels), -1).sum(1) - 1
        start = np.argwhere(grids == START)[:, 1:]
        goal = np.argwhere(grids == GOAL)[:, 1:]
        return {"path_length": length, "detour": length - np.abs(start - goal).sum(1)}
    if task == "sudoku":
        from hrm_gym.sudoku.solver import rate_difficulty

        empty = (grids == 0).reshape(len(grids), -1).sum(1)
        return {"empty_cells": empty, "backtracks": np.array([rate_difficulty(board) for board in grids])}
    return {}


# ---- policy checkpoints ------------------------------------------------------------------
def policy_subject(
    checkpoint, env: str | None, layouts, n: int, seed: int, device, data: dict[str, np.ndarray] | None
) -> Subject:
    from agents.evaluate import load_checked_policy, load_layouts
    from agents.policy import HRMActorCriticPolicy

    policy, record = load_checked_policy(checkpoint, env)
    env_id = env or record["env_id"]
    env_kwargs = record["env_kwargs"] if env_id == record["env_id"] else {}
    policy = policy.to(device)
    policy.set_training_mode(False)
    label = f"{env_id} policy ({record['policy_type']}, {record['extra'].get('source', 'trained')})"
    if not isinstance(policy, HRMActorCriticPolicy):
        obs = first_observation(env_id, env_kwargs, seed)
        return Subject(label, "policy", env_id, record["path"], policy, None, note=NO_REASONING.format(path=record["path"]),
                       one_decision=lambda: policy.predict(obs[None], deterministic=True))  # fmt: skip
    source = "the inputs of the analysed checkpoint"
    if data is None:
        grid_layouts = load_layouts(layouts, env_id, env_kwargs) if layouts is not None else None
        data = expert_states(env_id, env_kwargs, n, seed, grid_layouts)
        source = f"{len(data['grids'])} states of expert episodes of {env_id}" + (f" on {layouts}" if layouts else "")
    grids = data["grids"]
    obs = torch.as_tensor(grids, device=device)
    measure = "empty_cells" if env_id == "HRMSudoku-v0" else "steps_left"
    return Subject(
        label=label,
        kind="policy",
        domain=env_id,
        checkpoint=record["path"],
        module=policy,
        model=policy.hrm,
        segments=int(policy.max_segments or policy.hrm.config.halt_max_steps),
        inputs=policy.tokens(obs),
        data=data,
        scorer=policy_scorer(policy, obs, data),
        difficulty={measure: data[measure]},
        source=source,
    )


def policy_scorer(policy, obs: torch.Tensor, data: dict[str, np.ndarray]) -> Callable[[torch.Tensor], dict]:
    """Action logits of every state -> agreement with the expert and optimal-action rate of the
    greedy action (the observation's own view; the Sudoku mask applied as the policy applies it)."""
    legal = None
    if policy.action_mask == "sudoku":
        from agents.policy import sudoku_legal_actions

        legal = sudoku_legal_actions(obs).cpu()
        legal = legal | ~legal.any(1, keepdim=True)

    def score(logits: torch.Tensor) -> dict[str, float]:
        logits = logits.float().cpu()
        if legal is not None:
            logits = logits.masked_fill(~legal, -1e9)
        action = logits.argmax(-1).cpu().numpy()
        optimal = data["optimal"][np.arange(len(action)), action]
        return {
            "optimal_action_rate": float(optimal.mean()),
            "expert_agreement": float((action == data["actions"]).mean()),
        }

    return score


def first_observation(env_id: str, env_kwargs: dict[str, Any], seed: int) -> np.ndarray:
    import gymnasium as gym

    env = gym.make(env_id, **env_kwargs)
    try:
        return env.reset(seed=seed)[0]
    finally:
        env.close()


def expert_states(
    env_id: str, env_kwargs: dict[str, Any], n: int, seed: int, layouts: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """``n`` states drawn (with ``seed``) from the expert's episodes on the evaluation seeds of
    :mod:`agents.evaluate` (or on ``layouts``, each once): ``grids``, the expert's ``actions``, the
    ``optimal`` action masks, ``steps_left`` (expert steps to the episode's end), ``empty_cells``."""
    import gymnasium as gym

    from agents.evaluate import TEST_SPLIT
    from expert import make_expert
    from expert.generate import episode_seed

    env = gym.make(env_id, **env_kwargs).unwrapped
    expert = make_expert(env_id, **env_kwargs)
    option_key = "puzzle" if env_id == "HRMSudoku-v0" else "layout"
    rows: list[tuple[np.ndarray, int, np.ndarray, int]] = []
    episode = 0
    while len(rows) < STATE_POOL * n and (layouts is None or episode < len(layouts)):
        if layouts is None:
            reset = {"seed": episode_seed(seed, TEST_SPLIT, episode)}
        else:
            reset = {"seed": episode, "options": {option_key: layouts[episode]}}
        rows.extend(expert_episode(env, expert, reset))
        episode += 1
    env.close()
    pick = np.sort(np.random.default_rng(seed).choice(len(rows), size=min(n, len(rows)), replace=False))
    grids = np.stack([rows[i][0] for i in pick])
    return {
        "grids": grids,
        "actions": np.array([rows[i][1] for i in pick]),
        "optimal": np.stack([rows[i][2] for i in pick]),
        "steps_left": np.array([rows[i][3] for i in pick]),
        "empty_cells": (grids == 0).reshape(len(grids), -1).sum(1),
    }


def expert_episode(env, expert, reset: dict[str, Any]) -> list[tuple[np.ndarray, int, np.ndarray, int]]:
    """``(state, expert action, optimal mask, expert steps left)`` of every state of one expert episode."""
    expert.reset()
    obs, info = env.reset(**reset)
    visited = []
    while True:
        action = expert.act(obs, info)
        visited.append((np.array(obs, copy=True), int(action), expert.optimal_actions(obs, info)))
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return [(state, action, mask, len(visited) - t) for t, (state, action, mask) in enumerate(visited)]
