"""Roll the expert out and write a trajectory dataset (format: :mod:`expert.dataset`).

CLI::

    python -m expert.generate --env HRMForaging-v0 --episodes 10000 --seed 0 --out data/foraging \
        [--val-episodes 1000] [--env-kwargs '{"size": 16}']

Python (what behaviour cloning calls, cached)::

    from expert.generate import ensure_dataset
    ensure_dataset("HRMForaging-v0", episodes=10000, seed=0, out="data/foraging")

Determinism: episode ``i`` of split ``k`` (train 0, val 1) is reset with the seed
:func:`episode_seed` derives from ``(seed, k, i, attempt)``, so the same arguments give
byte-identical files. A validation episode whose layout (its first observation, which shows the
whole layout) appeared in the training split is redrawn with the next ``attempt``, so validation
never shares a layout with training.

Speed: the hot loop steps the unwrapped env (no ``gym.make`` wrappers), asks the expert once per
state through its ``label`` fast path when it has one, and stores raw bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import hrm_gym
from expert import EXPERTS, make_expert
from expert.base import Expert
from expert.dataset import (
    DatasetError,
    DatasetMissingError,
    SplitArrays,
    load_dataset,
    load_metadata,
    write_dataset,
)

SEED_SCHEME = (
    "episode i of split k (train 0, val 1), attempt a: "
    "numpy.random.SeedSequence(seed, spawn_key=(k, i, a)).generate_state(1, numpy.uint64)[0]"
)
#: A validation episode gives up after this many layouts that all appeared in training.
MAX_LAYOUT_ATTEMPTS = 1000


def episode_seed(seed: int, split_index: int, episode: int, attempt: int = 0) -> int:
    """The reset seed of one episode (see :data:`SEED_SCHEME`): independent streams per episode."""
    sequence = np.random.SeedSequence(seed, spawn_key=(split_index, episode, attempt))
    return int(sequence.generate_state(1, np.uint64)[0])


def normalise_env_kwargs(env_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """``env_kwargs`` as they round-trip through JSON (tuples become lists), or a clear error."""
    if env_kwargs is None:
        return {}
    if not isinstance(env_kwargs, Mapping):
        raise ValueError(f"env_kwargs must be a mapping of keyword arguments, got {env_kwargs!r}")
    try:
        return json.loads(json.dumps(dict(env_kwargs), sort_keys=True))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"env_kwargs must be JSON-serialisable, got {env_kwargs!r}: {exc}") from exc


def make_unwrapped_env(env_id: str, env_kwargs: Mapping[str, Any]) -> gym.Env:
    """The bare env behind ``gym.make(env_id, **env_kwargs)`` (registered kwargs applied)."""
    if env_id not in gym.registry:
        raise ValueError(f"unknown env id {env_id!r}; hrm-gym registers {sorted(hrm_gym.ENV_SPECS)}")
    return gym.make(env_id, disable_env_checker=True, **env_kwargs).unwrapped


@dataclass
class Rollouts:
    """One split collected in memory, plus how the episodes ended."""

    arrays: SplitArrays
    successes: int
    terminated: int
    truncated: int
    redraws: int = 0


def _succeeded(terminated: bool, info: Mapping[str, Any]) -> bool:
    """Terminated without being caught (Chase) or breaking a rule (Sudoku), and solved if said."""
    return (
        terminated
        and not info.get("caught", False)
        and not info.get("invalid_move", False)
        and info.get("solved", True) is not False
    )


def _labeller(expert: Expert) -> Callable[[np.ndarray, dict], tuple[int, np.ndarray]]:
    label = getattr(expert, "label", None)
    if callable(label):
        return label
    return lambda obs, info: (int(expert.act(obs, info)), expert.optimal_actions(obs, info))


def collect_rollouts(
    env: gym.Env,
    expert: Expert,
    episodes: int,
    seed_for: Callable[[int, int], int],
    *,
    forbidden_layouts: set[bytes] | frozenset[bytes] = frozenset(),
    on_episode: Callable[[], None] | None = None,
) -> Rollouts:
    """Run ``episodes`` expert episodes on ``env`` (unwrapped is fastest); return the split.

    Episode ``i`` is reset with ``seed_for(i, attempt)``, starting at attempt 0; while its first
    observation (the layout) is in ``forbidden_layouts`` it is redrawn with the next attempt.
    """
    obs_shape = tuple(env.observation_space.shape)
    n_actions = int(expert.n_actions)
    label = _labeller(expert)
    state_bytes: list[bytes] = []
    mask_bytes: list[bytes] = []
    actions: list[int] = []
    starts: list[bool] = []
    used_seeds: list[int] = []
    successes = terminated_count = truncated_count = redraws = 0
    for episode in range(episodes):
        for attempt in range(MAX_LAYOUT_ATTEMPTS):
            seed = int(seed_for(episode, attempt))
            obs, info = env.reset(seed=seed)
            obs = _as_obs(obs, obs_shape)
            if not forbidden_layouts or obs.tobytes() not in forbidden_layouts:
                break
            redraws += 1
        else:
            raise RuntimeError(
                f"episode {episode}: {MAX_LAYOUT_ATTEMPTS} layouts in a row were forbidden (seen in "
                "training); the env has too few distinct layouts for this many episodes"
            )
        expert.reset()
        used_seeds.append(seed)
        step = 0
        while True:
            try:
                action, mask = label(obs, info)
            except Exception as exc:
                raise RuntimeError(
                    f"{type(expert).__name__} failed on step {step} of the episode reset with seed {seed}: {exc}"
                ) from exc
            state_bytes.append(obs.tobytes())
            mask_bytes.append(np.asarray(mask, dtype=bool).tobytes())
            actions.append(action)
            starts.append(step == 0)
            step += 1
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
            obs = _as_obs(obs, obs_shape)
        successes += _succeeded(terminated, info)
        terminated_count += bool(terminated)
        truncated_count += bool(truncated and not terminated)
        if on_episode is not None:
            on_episode()
    n = len(actions)
    states = np.frombuffer(b"".join(state_bytes), dtype=np.uint8).reshape((n, *obs_shape))
    masks = np.frombuffer(b"".join(mask_bytes), dtype=np.bool_)
    if masks.size != n * n_actions:
        raise ValueError(
            f"{type(expert).__name__} returned optimal-action masks of the wrong size; "
            f"expected {n_actions} entries per state"
        )
    arrays = SplitArrays(
        states=states.copy(),
        actions=np.asarray(actions, dtype=np.int64),
        optimal_masks=masks.reshape(n, n_actions).copy(),
        episode_starts=np.asarray(starts, dtype=bool),
        episode_seeds=np.asarray(used_seeds, dtype=np.uint64),
    )
    return Rollouts(arrays, successes, terminated_count, truncated_count, redraws)


def _as_obs(obs: Any, obs_shape: tuple[int, ...]) -> np.ndarray:
    """The observation as ``uint8`` of the env's shape (a no-op for the hrm-gym envs)."""
    if type(obs) is np.ndarray and obs.dtype == np.uint8 and obs.shape == obs_shape:
        return obs
    array = np.asarray(obs)
    if array.shape != obs_shape or array.dtype.kind not in "iub":
        raise ValueError(
            f"env returned an observation of shape {array.shape} and dtype {array.dtype}; "
            f"expected integer codes of shape {obs_shape}"
        )
    return array.astype(np.uint8)


def layouts_of(arrays: SplitArrays) -> set[bytes]:
    """The layouts of a split's episodes: their first observations, as bytes."""
    return {row.tobytes() for row in arrays.states[arrays.episode_starts]}


class _Progress:
    """tqdm when available, else a plain line every few seconds (``expert`` must not need tqdm)."""

    def __init__(self, total: int, description: str, enabled: bool):
        self.total, self.description, self.enabled = total, description, enabled
        self.count = 0
        self._bar = None
        self._start = self._last = time.perf_counter()
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc=description, unit="ep", file=sys.stderr)

    def update(self) -> None:
        self.count += 1
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(1)
            return
        now = time.perf_counter()
        if now - self._last >= 2.0 or self.count == self.total:
            self._last = now
            rate = self.count / max(now - self._start, 1e-9)
            print(
                f"{self.description}: {self.count}/{self.total} episodes ({rate:.0f}/s)",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def generate_dataset(
    env_id: str,
    episodes: int,
    seed: int,
    out: str | Path,
    *,
    val_episodes: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate the train/val dataset of ``env_id`` into ``out``; return its metadata.

    ``val_episodes`` defaults to a tenth of ``episodes`` (at least 1). Same arguments, same bytes.
    """
    if env_id not in EXPERTS:
        raise ValueError(f"no expert for env {env_id!r}; experts exist for {sorted(EXPERTS)}")
    for name, value, minimum in (("episodes", episodes, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if val_episodes is None:
        val_episodes = max(1, int(episodes) // 10)
    if isinstance(val_episodes, bool) or not isinstance(val_episodes, int | np.integer) or val_episodes < 0:
        raise ValueError(f"val_episodes must be an integer >= 0, got {val_episodes!r}")
    episodes, seed, val_episodes = int(episodes), int(seed), int(val_episodes)
    kwargs = normalise_env_kwargs(env_kwargs)
    env = make_unwrapped_env(env_id, kwargs)
    expert = make_expert(env_id, **kwargs)
    obs_shape = tuple(int(v) for v in env.observation_space.shape)
    if int(expert.n_actions) != int(env.action_space.n):
        raise ValueError(
            f"expert {type(expert).__name__} acts in {expert.n_actions} actions, env {env_id} has {env.action_space.n}"
        )
    bar = _Progress(episodes + val_episodes, f"{env_id} expert episodes", progress)
    try:
        train = collect_rollouts(env, expert, episodes, lambda i, a: episode_seed(seed, 0, i, a), on_episode=bar.update)
        val = collect_rollouts(
            env,
            expert,
            val_episodes,
            lambda i, a: episode_seed(seed, 1, i, a),
            forbidden_layouts=layouts_of(train.arrays),
            on_episode=bar.update,
        )
    finally:
        bar.close()
        env.close()
    metadata = {
        "env_id": env_id,
        "env_kwargs": kwargs,
        "expert": EXPERTS[env_id],
        "seed": seed,
        "seed_scheme": SEED_SCHEME,
        "package_version": hrm_gym.__version__,
        "n_actions": int(expert.n_actions),
        "observation_shape": list(obs_shape),
        "splits": {
            name: {
                "successes": split.successes,
                "terminated": split.terminated,
                "truncated": split.truncated,
                "layout_redraws": split.redraws,
            }
            for name, split in (("train", train), ("val", val))
        },
    }
    return write_dataset(out, metadata, {"train": train.arrays, "val": val.arrays})


def ensure_dataset(
    env_id: str,
    episodes: int,
    seed: int,
    out: str | Path,
    *,
    val_episodes: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """The dataset in ``out`` if it is the one asked for, else generate it there (a cache).

    A directory without ``metadata.json`` counts as missing and is (re)generated. A complete
    dataset made with other arguments, or a damaged one, raises :class:`DatasetError` instead of
    being overwritten: delete it or pick another ``out``.
    """
    if val_episodes is None:
        val_episodes = max(1, int(episodes) // 10)
    try:
        metadata = load_metadata(out)
    except DatasetMissingError:
        return generate_dataset(
            env_id,
            episodes,
            seed,
            out,
            val_episodes=val_episodes,
            env_kwargs=env_kwargs,
            progress=progress,
        )
    wanted = {
        "env_id": env_id,
        "env_kwargs": normalise_env_kwargs(env_kwargs),
        "seed": int(seed),
        "train episodes": int(episodes),
        "val episodes": int(val_episodes),
    }
    found = {
        "env_id": metadata.get("env_id"),
        "env_kwargs": metadata.get("env_kwargs"),
        "seed": metadata.get("seed"),
        "train episodes": metadata["splits"].get("train", {}).get("episodes"),
        "val episodes": metadata["splits"].get("val", {}).get("episodes"),
    }
    differences = [f"{k}: wanted {wanted[k]!r}, found {found[k]!r}" for k in wanted if wanted[k] != found[k]]
    if differences:
        raise DatasetError(
            f"{out} holds another dataset ({'; '.join(differences)}); delete it or choose another directory"
        )
    for split in ("train", "val"):
        load_dataset(out, split, env_id)  # raises on any damaged file
    return metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m expert.generate", description="Write an expert trajectory dataset."
    )
    parser.add_argument("--env", required=True, help=f"env id, one of {sorted(EXPERTS)}")
    parser.add_argument("--episodes", type=int, required=True, help="training episodes")
    parser.add_argument("--seed", type=int, required=True, help="base seed (>= 0)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--val-episodes", type=int, default=None, help="default: episodes // 10")
    parser.add_argument("--env-kwargs", default="{}", help="JSON object, e.g. '{\"size\": 21}'")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as exc:
        parser.error(f"--env-kwargs is not valid JSON ({exc}): {args.env_kwargs!r}")
    if not isinstance(env_kwargs, dict):
        parser.error(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    start = time.perf_counter()
    try:
        metadata = generate_dataset(
            args.env,
            args.episodes,
            args.seed,
            args.out,
            val_episodes=args.val_episodes,
            env_kwargs=env_kwargs,
            progress=not args.no_progress,
        )
    except ValueError as exc:
        parser.error(str(exc))
    elapsed = time.perf_counter() - start
    total = sum(split["episodes"] for split in metadata["splits"].values())
    for name, split in metadata["splits"].items():
        print(
            f"{name}: {split['episodes']} episodes, {split['states']} states, "
            f"{split['successes']} successes, {split['truncated']} truncated, "
            f"{split['layout_redraws']} layout redraws"
        )
    print(f"wrote {args.out} in {elapsed:.2f} s ({total / elapsed:.0f} episodes/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
