"""The HRM-ACT model as a Stable-Baselines3 actor-critic policy.

``HRMActorCriticPolicy`` is what PPO gets as ``policy_class`` (with ``policy_kwargs``) and what
imitation's BC gets as ``policy=``, so their state dicts match and a BC run initialises PPO
directly. At every decision the HRM reasons adaptively: it runs segments until its Q head halts
(or ``max_segments``), row by row; the action distribution and the value come from the halting
segment's high-level state (the value head shares the reasoning state), and gradients flow into
that segment only (HRM's 1-step gradient). ``last_reasoning_steps`` holds the segments each row
of the latest call used.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule

from agents.hrm import HRMACTv1, HRMACTv1Config, ReasoningResult


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
    return HRMACTv1Config.from_dict({**base, **facts, **(overrides or {})})


class HRMActorCriticPolicy(ActorCriticPolicy):
    """SB3 policy whose actor and critic are one HRM-ACT model with an action head.

    Args (besides SB3's): ``hrm_config`` (HRM config keys overriding the preset), ``preset``
    (a name from ``HRMACTv1Config.PRESETS``), ``max_segments`` (cap on reasoning segments per
    decision; default the model's ``halt_max_steps``).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        lr_schedule: Schedule,
        hrm_config: dict[str, Any] | None = None,
        preset: str | None = "cpu_grid16",
        max_segments: int | None = None,
        **kwargs: Any,
    ):
        self.hrm_config = dict(hrm_config or {})
        self.preset = preset
        self.max_segments = max_segments
        self.model_config = hrm_config_for(observation_space, action_space, preset, self.hrm_config)
        kwargs.setdefault("net_arch", [])
        kwargs["ortho_init"] = False  # the HRM has its own (LeCun truncated normal) init
        self.last_reasoning_steps: torch.Tensor | None = None
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        self.hrm = HRMACTv1(self.model_config)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(hrm_config=self.hrm_config, preset=self.preset, max_segments=self.max_segments)
        return data

    # ---- reasoning ---------------------------------------------------------------------
    @staticmethod
    def tokens(obs: torch.Tensor) -> torch.Tensor:
        """Grid observations (SB3 hands them over as floats) as ``(B, H*W)`` long tokens."""
        return obs.long().flatten(1)

    def reason(self, obs: torch.Tensor, max_segments: int | None = None) -> ReasoningResult:
        """Adaptive reasoning on a batch of observations; records the segments used."""
        result = self.hrm.reason({"inputs": self.tokens(obs)}, max_segments or self.max_segments)
        self.last_reasoning_steps = result.steps.detach().cpu()
        return result

    def _distribution_and_values(self, obs: torch.Tensor):
        outputs = self.reason(obs).outputs
        distribution = self.action_dist.proba_distribution(action_logits=outputs["logits"].float())
        return distribution, outputs["value"].float().unsqueeze(-1)

    # ---- the ActorCriticPolicy interface -----------------------------------------------
    def forward(self, obs: torch.Tensor, deterministic: bool = False):
        distribution, values = self._distribution_and_values(obs)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        return actions, values, log_prob

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor):
        distribution, values = self._distribution_and_values(obs)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: torch.Tensor):
        return self._distribution_and_values(obs)[0]

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self._distribution_and_values(obs)[1]

    def _predict(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)
