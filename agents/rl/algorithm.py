"""SB3 PPO for the HRM policy: value warm-up, the frozen Q head, and decisions replayed at their depth.

**The Q head is frozen during PPO.** Its BC target, "this segment's action is the expert's",
has no counterpart in RL, and PPO's loss reaches the model only through the halting segment's
action logits and value, never through the Q logits. Freezing it keeps the halting rule BC
learned; ``requires_grad=False`` makes that explicit (Adam without a gradient leaves the
weights exactly as loaded).

**Value warm-up.** The BC policy's value head was never trained, so the first
``value_warmup_rollouts`` updates train the value head alone, and the first policy updates use
sensible advantages instead of noise that would drag the BC policy away from what it knows.

**Depth replay.** Each decision's reasoning depth (segments until the Q head halted) is stored
in the rollout buffer and replayed when the update re-scores the action: the trunk moves during
an update, and re-running adaptive halting there could score an action at another depth than
the one it was sampled with, so PPO's probability ratio would compare two different policies.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer

from agents.policy import HRMActorCriticPolicy


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block on ``n`` torch threads: rollouts and lockstep evaluations act on batches of
    a few observations, where a second spinning thread on a busy 2-core machine costs far more
    than it gives."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def is_value_parameter(name: str) -> bool:
    """The value head's own weights (HRM ``hrm.value_head`` or the separate ``critic``; SB3 MLP
    ``value_net``/``mlp_extractor.value_net``)."""
    return name.startswith(("hrm.value_head", "critic.", "value_net", "mlp_extractor.value_net"))


class SegmentRolloutBuffer(RolloutBuffer):
    """SB3's rollout buffer plus the reasoning depth of every decision (module docstring).

    ``add`` records ``policy.last_decision_steps``; each minibatch's depths reach the policy
    (``replay_segments``) just before SB3 evaluates it. SB3 has no public hook between drawing a
    minibatch and scoring it, so this is the one place that overrides ``_get_samples``; a test
    (``tests/test_ppo.py``) fails if SB3 stops drawing minibatches through it.
    """

    policy: HRMActorCriticPolicy | None = None

    def reset(self) -> None:
        super().reset()
        self.segments = np.ones((self.buffer_size, self.n_envs), dtype=np.int64)
        self.flat_segments: np.ndarray | None = None

    def add(self, *args, **kwargs) -> None:
        steps = None if self.policy is None else self.policy.last_decision_steps
        if steps is not None:
            self.segments[self.pos] = steps.numpy().reshape(self.n_envs)
        super().add(*args, **kwargs)

    def _get_samples(self, batch_inds: np.ndarray, env=None):
        if self.flat_segments is None:  # the same (env, step) order as swap_and_flatten
            self.flat_segments = self.segments.swapaxes(0, 1).reshape(-1)
        if self.policy is not None:
            self.policy.replay_segments = torch.as_tensor(self.flat_segments[batch_inds])
        return super()._get_samples(batch_inds, env)


class HRMPPO(PPO):
    """SB3 PPO plus a value warm-up phase and frozen parameters (module docstring).

    Both go through ``requires_grad``: SB3's Adam skips parameters without a gradient, so frozen
    weights stay exactly as loaded.
    """

    value_warmup_rollouts: int = 0
    frozen_prefixes: tuple[str, ...] = ()
    rollout_threads: int = 1

    def _setup_model(self) -> None:
        super()._setup_model()
        if isinstance(self.rollout_buffer, SegmentRolloutBuffer):
            self.rollout_buffer.policy = self.policy

    def collect_rollouts(self, *args, **kwargs) -> bool:
        with torch_threads(self.rollout_threads):
            return super().collect_rollouts(*args, **kwargs)

    def apply_freezing(self, warmup: bool = False) -> None:
        for name, param in self.policy.named_parameters():
            frozen = any(name.startswith(p) for p in self.frozen_prefixes)
            if warmup:
                frozen = frozen or not is_value_parameter(name)
            param.requires_grad_(not frozen)

    def train(self) -> None:
        rollout = self.num_timesteps // (self.n_steps * self.n_envs)  # 1 after the first rollout
        warmup = rollout <= self.value_warmup_rollouts
        self.apply_freezing(warmup)
        try:
            super().train()
        finally:
            self.apply_freezing(False)
        self.logger.record("train/value_warmup", float(warmup))
