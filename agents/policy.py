"""The HRM-ACT model as a Stable-Baselines3 actor-critic policy.

``HRMActorCriticPolicy`` is what PPO gets as ``policy_class`` (with ``policy_kwargs``) and what
imitation's BC gets as ``policy=``, so their state dicts match and a BC run initialises PPO
directly. At every decision the HRM reasons adaptively: it runs segments until its Q head halts
(or ``max_segments``), row by row; the action distribution and the value come from the halting
segment's high-level state, and gradients flow into that segment only (HRM's 1-step gradient).
``last_reasoning_steps`` holds the segments each row of the latest call used.

The critic reads the same reasoning state, in one of two ways (``critic``): ``shared`` (the
HRM's linear value head; the value loss trains the trunk too) or ``separate`` (a small conv net
of its own over the one-hot grid, joined with the *detached* reasoning state: the value is learnt
without moving the trunk, so RL returns of +-10 cannot overwrite what behaviour cloning taught
it, and it sees what BC features never needed, such as where the enemy is; only the policy
loss moves the trunk).

Greedy decisions can be checked by a vote of the grid's symmetric views (``decision_views``,
see :meth:`HRMActorCriticPolicy.greedy_actions`): test-time compute, as voting over views is
for the puzzle mode. Sampling (PPO rollouts, log-probs) always uses the observation as it is.
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule

from agents.augment import ACTION_PERMUTATIONS, NUM_SYMMETRIES, transform_grid_tensors
from agents.hrm import HRMACTv1, HRMACTv1Config, HRMACTv1InnerCarry, ReasoningResult
from hrm_gym.sudoku.solver import legal_placements


def hrm_config_for(
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Discrete,
    preset: str | None = "cpu_grid16",
    overrides: dict[str, Any] | None = None,
) -> HRMACTv1Config:
    """The model config for an env's spaces: a preset, the spaces' facts, then ``overrides``."""
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 2:
        raise ValueError(f"the HRM policy needs a 2-D grid observation space, got {observation_space}")
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(f"the HRM policy needs a Discrete action space, got {action_space}")
    height, width = (int(v) for v in observation_space.shape)
    facts = {
        "vocab_size": int(np.max(observation_space.high)) + 1,
        "grid_height": height,
        "grid_width": width,
        "head": "action",
        "n_actions": int(action_space.n),
        "value_head": True,
    }
    base = dict(HRMACTv1Config.PRESETS[preset]) if preset else {}
    if preset and preset not in HRMACTv1Config.PRESETS:
        raise ValueError(f"unknown HRM preset {preset!r}; presets: {sorted(HRMACTv1Config.PRESETS)}")
    config = HRMACTv1Config.from_dict({**base, **facts, **(overrides or {})})
    if config.head == "cell_action" and height * width * config.vocab_out != action_space.n:
        raise ValueError(
            f"head='cell_action' gives {height}x{width} cells x vocab_out={config.vocab_out} = "
            f"{height * width * config.vocab_out} actions, but the env has {action_space.n}"
        )
    if config.head == "sequence":
        raise ValueError("the policy needs head='action' or 'cell_action', got 'sequence'")
    return config


ACTION_MASKS = ("none", "sudoku")


def sudoku_legal_actions(boards: torch.Tensor) -> torch.Tensor:
    """``(B, 729)`` bool: writing digit ``a % 9 + 1`` in cell ``a // 9`` breaks no Sudoku rule.

    The env's own rule (:func:`hrm_gym.sudoku.solver.legal_placements`, which also gives
    ``info["action_mask"]``), applied to the observations, so that the policy masks its own
    decisions in BC, PPO and evaluation alike.
    """
    board = boards.long().reshape(-1, 9, 9).cpu().numpy()
    return torch.as_tensor(legal_placements(board).reshape(-1, 729), device=boards.device)


class SeparateCritic(torch.nn.Module):
    """Value = MLP(conv features of the one-hot grid, detached HRM reasoning state)."""

    def __init__(self, vocab_size: int, height: int, width: int, hidden_size: int, channels: int = 32):
        super().__init__()
        self.vocab_size = vocab_size
        self.grid_net = torch.nn.Sequential(
            torch.nn.Conv2d(vocab_size, channels, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(channels, channels, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(channels, channels, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Flatten(),
        )  # fmt: skip
        with torch.no_grad():
            n_grid = self.grid_net(torch.zeros(1, vocab_size, height, width)).shape[1]
        self.head = torch.nn.Sequential(
            torch.nn.Linear(n_grid + hidden_size, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1)
        )

    def forward(self, obs: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        one_hot = torch.nn.functional.one_hot(obs.long(), self.vocab_size).permute(0, 3, 1, 2).float()
        return self.head(torch.cat((self.grid_net(one_hot), features.detach().float()), dim=1))


class HRMActorCriticPolicy(ActorCriticPolicy):
    """SB3 policy whose actor and critic are one HRM-ACT model with an action head.

    Args (besides SB3's): ``hrm_config`` (HRM config keys overriding the preset), ``preset``
    (a name from ``HRMACTv1Config.PRESETS``), ``max_segments`` (cap on reasoning segments per
    decision; default the model's ``halt_max_steps``), ``critic`` (``shared`` | ``separate``,
    see the module docstring), ``action_mask`` (``none`` | ``sudoku``: illegal actions get
    probability 0 at every decision; with the ``cell_action`` head for Sudoku).

    ``decision_views`` (1-8) and ``view_keep``: the vote of :meth:`greedy_actions` (1 = none).

    ``replay_segments``: when set (a ``(B,)`` tensor), the next :meth:`evaluate_actions` runs
    each row for exactly that many segments and clears it; PPO's rollout buffer sets it so
    that an update scores each action at the depth it was taken with.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        lr_schedule: Schedule,
        hrm_config: dict[str, Any] | None = None,
        preset: str | None = "cpu_grid16",
        max_segments: int | None = None,
        critic: Literal["shared", "separate"] = "shared",
        action_mask: str = "none",
        decision_views: int = 1,
        view_keep: float = 0.4,
        **kwargs: Any,
    ):
        if critic not in ("shared", "separate"):
            raise ValueError(f"critic must be 'shared' or 'separate', got {critic!r}")
        if action_mask not in ACTION_MASKS:
            raise ValueError(f"action_mask must be one of {ACTION_MASKS}, got {action_mask!r}")
        if action_mask == "sudoku" and (getattr(action_space, "n", None) != 729 or observation_space.shape != (9, 9)):
            raise ValueError(
                f"action_mask='sudoku' needs 9x9 boards and 729 actions, got {observation_space} / {action_space}"
            )
        self.action_mask = action_mask
        self.critic_kind = critic
        self.decision_views, self.view_keep = check_decision_views(
            decision_views, view_keep, observation_space, action_space, action_mask
        )
        self.hrm_config = dict(hrm_config or {})
        self.preset = preset
        self.max_segments = max_segments
        self.model_config = hrm_config_for(observation_space, action_space, preset, self.hrm_config)
        kwargs.setdefault("net_arch", [])
        kwargs["ortho_init"] = False  # the HRM has its own (LeCun truncated normal) init
        self.last_reasoning_steps: torch.Tensor | None = None
        self.last_action_scores: torch.Tensor | None = None
        self.last_decision_steps: torch.Tensor | None = None  # set by forward() only (rollouts)
        self.replay_segments: torch.Tensor | None = None
        self.last_state: HRMACTv1InnerCarry | None = None  # set by reason(start=...): a carried plan
        #: the per-cell head's logits of the latest call (a model with aux_vocab_out > 0: a maze
        #: policy's next move per cell, see :func:`planned_route`), detached; else None
        self.last_cell_logits: torch.Tensor | None = None
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        self.hrm = HRMACTv1(self.model_config)
        if self.critic_kind == "separate":
            cfg = self.model_config
            self.critic = SeparateCritic(cfg.vocab_size, cfg.grid_height, cfg.grid_width, cfg.hidden_size)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            hrm_config=self.hrm_config,
            preset=self.preset,
            max_segments=self.max_segments,
            critic=self.critic_kind,
            action_mask=self.action_mask,
            decision_views=self.decision_views,
            view_keep=self.view_keep,
        )
        return data

    # ---- reasoning ---------------------------------------------------------------------
    @staticmethod
    def tokens(obs: torch.Tensor) -> torch.Tensor:
        """Grid observations (SB3 hands them over as floats) as ``(B, rows, cols)`` long tokens: the
        model reads each grid at its own size, so a model without learned positions (RoPE or
        conv blocks) also decides on grids larger or smaller than it was trained on."""
        return obs.long()

    def reason(
        self,
        obs: torch.Tensor,
        max_segments: int | None = None,
        segments: torch.Tensor | None = None,
        start: HRMACTv1InnerCarry | None = None,
    ) -> ReasoningResult:
        """Adaptive reasoning on a batch of observations (or replayed depths); records the segments
        used. ``start``: each row's states to reason from (a carried plan, :meth:`fresh_state` for
        a new episode); then ``last_state`` holds the states each row halted with."""
        result = self.hrm.reason(
            {"inputs": self.tokens(obs)}, max_segments or self.max_segments, segments=segments,
            start=start, keep_state=start is not None,
        )  # fmt: skip
        self.last_reasoning_steps = result.steps.detach().cpu()
        self.last_state = result.state
        return result

    def fresh_state(self, obs: torch.Tensor) -> HRMACTv1InnerCarry:
        """The reasoning states of a decision with nothing carried over (the model's initial states)."""
        return self.hrm.initial_state({"inputs": self.tokens(obs)})

    def _distribution_and_values(
        self,
        obs: torch.Tensor,
        segments: torch.Tensor | None = None,
        values: bool = True,
        start: HRMACTv1InnerCarry | None = None,
    ):
        """The action distribution and (``values``) the critic's value of a batch; without
        ``values`` the critic never runs (the separate critic reads the training grid size only)."""
        outputs = self.reason(obs, segments=segments, start=start).outputs
        aux = outputs.get("aux_logits")
        self.last_cell_logits = None if aux is None else aux.detach()
        logits = outputs["logits"].float()
        if self.action_mask == "sudoku":
            legal = sudoku_legal_actions(obs)
            legal = legal | ~legal.any(1, keepdim=True)  # a dead-end board: leave it unmasked
            logits = logits.masked_fill(~legal, -1e9)
        distribution = self.action_dist.proba_distribution(action_logits=logits)
        if not values:
            return distribution, None
        if self.critic_kind == "separate":
            return distribution, self.critic(obs, outputs["features"])
        return distribution, outputs["value"].float().unsqueeze(-1)

    # ---- the ActorCriticPolicy interface -----------------------------------------------
    def forward(self, obs: torch.Tensor, deterministic: bool = False):
        distribution, values = self._distribution_and_values(obs)
        self.last_decision_steps = self.last_reasoning_steps
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        return actions, values, log_prob

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor):
        segments, self.replay_segments = self.replay_segments, None
        if segments is not None and len(segments) != len(obs):
            raise ValueError(f"replay_segments holds {len(segments)} counts for {len(obs)} observations")
        distribution, values = self._distribution_and_values(obs, segments)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: torch.Tensor, start: HRMACTv1InnerCarry | None = None):
        return self._distribution_and_values(obs, values=False, start=start)[0]

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self._distribution_and_values(obs)[1]

    def _predict(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        if deterministic:
            return self.greedy_actions(observation)[0]
        return self.get_distribution(observation).get_actions(deterministic=False)

    # ---- greedy decisions, checked by the symmetric views ----------------------------------
    def greedy_actions(
        self, obs: torch.Tensor, views: int | None = None, start: HRMACTv1InnerCarry | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(actions, segments)``: greedy actions, with ``views`` > 1 checked by a vote.

        The first ``views`` dihedral views of each grid (``agents.augment``; default
        ``decision_views``) are reasoned on in one batch and their action probabilities mapped
        back onto the original moves. The observation's own greedy action stands unless the
        views' mean probability of it is below ``view_keep``; then the vote's most probable
        action is taken. Why not the vote alone: the expert breaks ties up < down < left <
        right, which no symmetry keeps, so each view backs *its* first optimal move and the
        vote splits a two-way tie about evenly; a threshold a little under one half keeps the
        original view's tie-break where the views agree it is optimal, and overrides the
        moves few views back (docs/results.md, behaviour cloning). ``segments``: reasoning
        segments per decision, summed over the views (the compute the decision cost).
        ``last_action_scores`` keeps each row's ranking of the moves, the chosen one first (the
        vote's mean probabilities; the observation's own with one view), for decision rules
        that need a second choice (:class:`agents.evaluate.LoopEscape`).

        ``start`` (one view only): reason from each row's carried states (:meth:`reason`);
        ``last_state`` then holds the states to carry to the next decision.
        """
        views = self.decision_views if views is None else views
        if start is not None:
            if views != 1:
                raise ValueError(
                    f"a carried plan (start=) decides on the observation alone: views must be 1, got {views}"
                )
            probs = self.get_distribution(obs, start=start).distribution.probs
            chosen = probs.argmax(1)
            self.last_action_scores = probs.scatter(1, chosen[:, None], 2.0).detach().cpu()
            return chosen, self.last_reasoning_steps
        if views not in (1, self.decision_views):  # an override: the spaces must allow it
            check_decision_views(views, self.view_keep, self.observation_space, self.action_space, self.action_mask)
        stacked = torch.cat([transform_grid_tensors(obs, k) for k in range(views)]) if views > 1 else obs
        probs = self.get_distribution(stacked).distribution.probs.view(views, len(obs), -1)
        steps = self.last_reasoning_steps.view(views, len(obs)).sum(0)
        chosen = probs[0].argmax(1)
        scores = probs[0]
        if views > 1:
            back = torch.as_tensor(ACTION_PERMUTATIONS[:views], device=probs.device)
            vote = probs.gather(2, back[:, None, :].expand(-1, len(obs), -1)).mean(0)
            keep = vote.gather(1, chosen[:, None]).squeeze(1) >= self.view_keep
            chosen = torch.where(keep, chosen, vote.argmax(1))
            scores = vote
        self.last_action_scores = scores.scatter(1, chosen[:, None], 2.0).detach().cpu()  # chosen ranks first
        self.last_reasoning_steps = steps
        return chosen, steps


def planned_route(grid: np.ndarray, moves: np.ndarray) -> np.ndarray:
    """The cells a maze policy plans to walk: from the agent, each cell's predicted next move
    (classes 2-5 = up, down, left, right, as ``agents.puzzles.maze.next_move_classes``) until the
    goal, a wall, the edge or a cell already on the route. ``(H, W)`` bool."""
    from hrm_gym.core.grid import ACTION_DELTAS, AGENT, WALL

    grid, moves = np.asarray(grid), np.asarray(moves).reshape(np.shape(grid))
    route = np.zeros(grid.shape, dtype=bool)
    agent = np.argwhere(grid == AGENT)
    if len(agent) != 1:
        return route
    row, col = (int(v) for v in agent[0])
    while not route[row, col]:
        route[row, col] = True
        move = int(moves[row, col]) - 2
        if not 0 <= move < len(ACTION_DELTAS):
            break
        row2, col2 = row + ACTION_DELTAS[move][0], col + ACTION_DELTAS[move][1]
        if not (0 <= row2 < grid.shape[0] and 0 <= col2 < grid.shape[1]) or grid[row2, col2] == WALL:
            break
        row, col = row2, col2
    return route


def check_decision_views(
    views: Any, keep: Any, observation_space: gym.spaces.Space, action_space: gym.spaces.Space, action_mask: str
) -> tuple[int, float]:
    """Checked ``(decision_views, view_keep)``: views need square grids and the 4 grid moves."""
    if isinstance(views, bool) or not isinstance(views, int) or not 1 <= views <= NUM_SYMMETRIES:
        raise ValueError(f"decision_views must be an integer 1..{NUM_SYMMETRIES}, got {views!r}")
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0.0 <= keep <= 1.0:
        raise ValueError(f"view_keep must be a number in [0, 1], got {keep!r}")
    if views > 1:
        shape = getattr(observation_space, "shape", None)
        if shape is None or len(shape) != 2 or shape[0] != shape[1] or getattr(action_space, "n", None) != 4:
            raise ValueError(
                f"decision_views={views} needs square grid observations and the 4 grid moves "
                f"(up, down, left, right), got {observation_space} / {action_space}: use decision_views=1"
            )
        if action_mask != "none":
            raise ValueError(f"decision_views={views} does not combine with action_mask={action_mask!r}")
    return int(views), float(keep)
