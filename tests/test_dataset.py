"""Expert datasets: round trip, byte-identical regeneration, train/val disjointness, bad files."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import expert.generate as generate_module
from expert import EXPERTS, make_expert
from expert.dataset import (
    ARRAY_NAMES,
    FORMAT_VERSION,
    DatasetError,
    DatasetMissingError,
    load_dataset,
    load_metadata,
)
from expert.generate import collect_rollouts, ensure_dataset, generate_dataset, layouts_of, main
from hrm_gym.foraging.env import ForagingEnv

ENV = "HRMForaging-v0"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("foraging") / "data"
    generate_dataset(ENV, 40, 7, out, val_episodes=10, progress=False)
    return out


@pytest.fixture
def copy(dataset, tmp_path) -> Path:
    """A private copy of the module dataset that a test may damage."""
    target = tmp_path / "copy"
    shutil.copytree(dataset, target)
    return target


def test_round_trip_replays_in_the_env(dataset):
    metadata = load_metadata(dataset, ENV)
    assert metadata["format_version"] == FORMAT_VERSION
    assert metadata["n_actions"] == 4 and metadata["observation_shape"] == [16, 16]
    expert = make_expert(ENV)
    env = ForagingEnv()
    for split, episodes in (("train", 40), ("val", 10)):
        data = load_dataset(dataset, split, ENV)
        assert data.num_episodes == episodes == metadata["splits"][split]["episodes"]
        assert data.num_states == metadata["splits"][split]["states"]
        assert metadata["splits"][split]["successes"] == episodes
        assert data.states.dtype == np.uint8 and data.actions.dtype == np.int64
        starts = np.flatnonzero(data.episode_starts).tolist() + [data.num_states]
        for episode, seed in enumerate(data.episode_seeds):
            obs, info = env.reset(seed=int(seed))
            for i in range(starts[episode], starts[episode + 1]):
                np.testing.assert_array_equal(data.states[i], obs)
                np.testing.assert_array_equal(data.optimal_masks[i], expert.optimal_actions(obs, info))
                assert data.actions[i] == expert.act(obs, info)
                obs, _, terminated, truncated, info = env.step(int(data.actions[i]))
                assert terminated == (i == starts[episode + 1] - 1)
        assert (data.episode_index()[np.flatnonzero(data.episode_starts)] == np.arange(episodes)).all()


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(dataset, tmp_path):
    again = tmp_path / "again"
    generate_dataset(ENV, 40, 7, again, val_episodes=10, progress=False)
    for path in sorted(dataset.iterdir()):
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name
    other = tmp_path / "other"
    generate_dataset(ENV, 40, 8, other, val_episodes=10, progress=False)
    assert (other / "train_states.npy").read_bytes() != (dataset / "train_states.npy").read_bytes()


def test_val_layouts_never_appear_in_train(dataset):
    train = load_dataset(dataset, "train")
    val = load_dataset(dataset, "val")
    assert not layouts_of(train) & layouts_of(val)


def test_val_redraws_layouts_seen_in_training(tmp_path):
    # 8x8 without walls has only 64 * 63 layouts: 300 training episodes force collisions.
    out = tmp_path / "small"
    kwargs = {"size": 8, "wall_segments": [0, 0]}
    metadata = generate_dataset(ENV, 300, 1, out, val_episodes=150, env_kwargs=kwargs, progress=False)
    assert metadata["splits"]["val"]["layout_redraws"] > 0
    assert not layouts_of(load_dataset(out, "train")) & layouts_of(load_dataset(out, "val"))
    assert metadata["env_kwargs"] == kwargs


def test_collect_rollouts_redraws_a_forbidden_layout():
    env, expert = ForagingEnv(), make_expert(ENV)
    first = collect_rollouts(env, expert, 1, lambda i, a: 100 + a)
    again = collect_rollouts(env, expert, 1, lambda i, a: 100 + a, forbidden_layouts=layouts_of(first.arrays))
    assert again.redraws == 1 and int(again.arrays.episode_seeds[0]) == 101
    with pytest.raises(RuntimeError, match="layouts in a row were forbidden"):
        collect_rollouts(env, expert, 1, lambda i, a: 100, forbidden_layouts=layouts_of(first.arrays))


# ---- bad files ---------------------------------------------------------------------------
def _rewrite(directory: Path, name: str, array: np.ndarray, *, update_metadata: bool) -> None:
    """Replace one file; optionally fix its size and hash so a deeper check must catch it."""
    np.save(directory / name, array, allow_pickle=False)
    if update_metadata:
        import hashlib

        meta_path = directory / "metadata.json"
        meta = json.loads(meta_path.read_text())
        data = (directory / name).read_bytes()
        meta["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        meta_path.write_text(json.dumps(meta))


def _edit_metadata(directory: Path, edit) -> None:
    path = directory / "metadata.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def test_missing_directory_and_metadata(tmp_path, copy):
    with pytest.raises(DatasetMissingError, match="metadata.json: no such file"):
        load_dataset(tmp_path / "nowhere", "train")
    (copy / "metadata.json").unlink()
    with pytest.raises(FileNotFoundError, match="metadata.json"):
        load_dataset(copy, "train")


@pytest.mark.parametrize("array", ARRAY_NAMES)
def test_missing_array_file(copy, array):
    (copy / f"val_{array}.npy").unlink()
    with pytest.raises(DatasetMissingError, match=f"val_{array}.npy: no such file"):
        load_dataset(copy, "val")


def test_truncated_file(copy):
    path = copy / "train_states.npy"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=r"train_states.npy: \d+ bytes, metadata.json says .*truncated"):
        load_dataset(copy, "train")


def test_tampered_file_same_size(copy):
    path = copy / "train_actions.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="train_actions.npy: sha256 differs"):
        load_dataset(copy, "train")


def test_corrupt_npy_header(copy):
    path = copy / "train_actions.npy"
    data = bytearray(path.read_bytes())
    data[:6] = b"NOTNPY"
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="train_actions.npy: not a readable .npy file"):
        load_dataset(copy, "train", verify=False)


def test_wrong_shape(copy):
    states = np.load(copy / "train_states.npy")
    _rewrite(copy, "train_states.npy", states[:, :8, :], update_metadata=True)
    with pytest.raises(DatasetError, match=r"train_states.npy: shape \(\d+, 8, 16\), expected"):
        load_dataset(copy, "train")


def test_wrong_dtype(copy):
    actions = np.load(copy / "train_actions.npy")
    _rewrite(copy, "train_actions.npy", actions.astype(np.int32), update_metadata=True)
    with pytest.raises(DatasetError, match="train_actions.npy: dtype int32, expected int64"):
        load_dataset(copy, "train")


def test_pickled_object_array_is_refused(copy):
    np.save(copy / "train_actions.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    _edit_metadata(
        copy,
        lambda m: m["files"].__setitem__(
            "train_actions.npy", {"bytes": (copy / "train_actions.npy").stat().st_size, "sha256": "x"}
        ),
    )
    with pytest.raises(DatasetError, match="train_actions.npy: not a readable .npy file"):
        load_dataset(copy, "train", verify=False)


def test_mismatched_counts(copy):
    _edit_metadata(copy, lambda m: m["splits"]["train"].__setitem__("states", 3))
    with pytest.raises(DatasetError, match="expected .*from metadata.json"):
        load_dataset(copy, "train")


def test_episode_starts_disagree_with_seeds(copy):
    starts = np.load(copy / "val_episode_starts.npy")
    starts[np.flatnonzero(starts)[1]] = False
    _rewrite(copy, "val_episode_starts.npy", starts, update_metadata=True)
    with pytest.raises(DatasetError, match="episode_starts marks 9 episodes but there are 10"):
        load_dataset(copy, "val")


def test_action_outside_its_mask(copy):
    actions = np.load(copy / "val_actions.npy")
    masks = np.load(copy / "val_optimal_masks.npy")
    actions[0] = int(np.flatnonzero(~masks[0])[0])
    _rewrite(copy, "val_actions.npy", actions, update_metadata=True)
    with pytest.raises(DatasetError, match="state 0: the expert action .* not in its own optimal"):
        load_dataset(copy, "val")


def test_action_out_of_range(copy):
    actions = np.load(copy / "val_actions.npy")
    actions[2] = 7
    _rewrite(copy, "val_actions.npy", actions, update_metadata=True)
    with pytest.raises(DatasetError, match=r"actions range over \[0, 7\], allowed \[0, 3\]"):
        load_dataset(copy, "val")


def test_other_format_version(copy):
    _edit_metadata(copy, lambda m: m.__setitem__("format_version", FORMAT_VERSION + 1))
    with pytest.raises(DatasetError, match=f"format version {FORMAT_VERSION + 1}, this code reads"):
        load_dataset(copy, "train")


def test_other_env(copy):
    with pytest.raises(DatasetError, match="made for env 'HRMForaging-v0', expected 'HRMMaze-v0'"):
        load_dataset(copy, "train", "HRMMaze-v0")


def test_corrupt_or_foreign_metadata(copy):
    (copy / "metadata.json").write_text("{not json")
    with pytest.raises(DatasetError, match="unreadable metadata"):
        load_dataset(copy, "train")
    (copy / "metadata.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DatasetError, match="not a hrm-gym-expert-dataset metadata file"):
        load_dataset(copy, "train")


def test_unknown_or_absent_split(copy):
    with pytest.raises(ValueError, match="unknown split 'test'"):
        load_dataset(copy, "test")
    _edit_metadata(copy, lambda m: m["splits"].pop("val"))
    with pytest.raises(DatasetError, match="no split 'val'"):
        load_dataset(copy, "val")


# ---- the API that BC calls ------------------------------------------------------------------
def test_ensure_dataset_generates_then_reuses_then_refuses_another(tmp_path, monkeypatch):
    out = tmp_path / "cache"
    first = ensure_dataset(ENV, 5, 3, out, val_episodes=2, progress=False)
    assert first["splits"]["train"]["episodes"] == 5

    def fail(*args, **kwargs):
        raise AssertionError("regenerated a dataset that was already there")

    monkeypatch.setattr(generate_module, "generate_dataset", fail)
    assert ensure_dataset(ENV, 5, 3, out, val_episodes=2, progress=False) == first
    with pytest.raises(DatasetError, match="seed: wanted 4, found 3"):
        ensure_dataset(ENV, 5, 4, out, val_episodes=2, progress=False)
    with pytest.raises(DatasetError, match="env_kwargs"):
        ensure_dataset(ENV, 5, 3, out, val_episodes=2, env_kwargs={"size": 12}, progress=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"env_id": "NoSuchEnv-v0"}, "no expert for env 'NoSuchEnv-v0'"),
        ({"episodes": 0}, "episodes must be an integer >= 1, got 0"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"val_episodes": -2}, "val_episodes must be an integer >= 0"),
        ({"env_kwargs": {"size": 3}}, "size must be between 8 and 32, got 3"),
        ({"env_kwargs": {"size": object()}}, "JSON-serialisable"),
    ],
)
def test_bad_generation_arguments(tmp_path, kwargs, message):
    args = {"env_id": ENV, "episodes": 2, "seed": 0, "out": tmp_path / "x", "progress": False}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        generate_dataset(**args)


# ---- the CLI -------------------------------------------------------------------------------
def test_cli_writes_a_dataset_with_plain_progress_when_tqdm_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails: plain progress lines
    out = tmp_path / "cli"
    args = [
        "--env",
        ENV,
        "--episodes",
        "6",
        "--seed",
        "2",
        "--out",
        str(out),
        "--val-episodes",
        "3",
        "--env-kwargs",
        '{"size": 12}',
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "expert episodes: 9/9 episodes" in captured.err
    assert "train: 6 episodes" in captured.out
    data = load_dataset(out, "val", ENV)
    assert data.num_episodes == 3 and data.states.shape[1:] == (12, 12)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--env-kwargs", "{bad"], "--env-kwargs is not valid JSON"),
        (["--env-kwargs", "[1, 2]"], "--env-kwargs must be a JSON object"),
        (["--episodes", "0"], "episodes must be an integer >= 1"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, capsys, extra, message):
    args = ["--env", ENV, "--episodes", "2", "--seed", "0", "--out", str(tmp_path / "x"), *extra]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


# ---- every env with an expert (when its modules exist) ----------------------------------
def _available(env_id: str) -> bool:
    module = EXPERTS[env_id].split(":")[0]
    env_module = {
        "HRMForagingChase-v0": "hrm_gym.foraging.chase",
        "HRMSudoku-v0": "hrm_gym.sudoku.env",
        "HRMMaze-v0": "hrm_gym.maze.env",
        "HRMMaze-Hard-v0": "hrm_gym.maze.env",
    }.get(env_id)
    for name in (module, env_module):
        if name is None:
            continue
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except ModuleNotFoundError:
            return False
    return True


SMALL_KWARGS = {"HRMMaze-v0": {"size": 11}, "HRMSudoku-v0": {"difficulty": "easy"}}


@pytest.mark.parametrize("env_id", sorted(EXPERTS))
def test_every_env_generates_a_loadable_dataset(tmp_path, env_id):
    if not _available(env_id):
        pytest.skip(f"{env_id}: env or expert module not available yet")
    out = tmp_path / env_id
    kwargs = SMALL_KWARGS.get(env_id, {})
    metadata = generate_dataset(env_id, 3, 0, out, val_episodes=2, env_kwargs=kwargs, progress=False)
    for split in ("train", "val"):
        data = load_dataset(out, split, env_id)
        assert data.num_states > 0
        assert data.optimal_masks.shape[1] == metadata["n_actions"]
    assert not layouts_of(load_dataset(out, "train")) & layouts_of(load_dataset(out, "val"))


def test_malformed_metadata_entries(copy):
    _edit_metadata(copy, lambda m: m["files"].__setitem__("train_states.npy", {"bytes": 1}))
    with pytest.raises(DatasetError, match="train_states.npy: its metadata.json entry lacks"):
        load_dataset(copy, "train")
    _edit_metadata(copy, lambda m: m["splits"]["val"].pop("states"))
    with pytest.raises(DatasetError, match="bad shape or count entries for split 'val'"):
        load_dataset(copy, "val")


def test_expert_benchmark_runs_on_a_tiny_setting(capsys):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "expert.py"
    spec = importlib.util.spec_from_file_location("expert_benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    assert (
        benchmark.main(
            ["--episodes", "5", "--gen-scale", "0.001", "--only", "Foraging", "--only", "Maze 11", "--json-only"]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert [row["env"] for row in result["quality"]] == ["Foraging 16x16", "Maze 11x11"]
    for row in result["quality"]:
        assert row["success_rate"] == 1.0 and row["min_path_ratio"] == row["max_path_ratio"] == 1.0
    assert all(row["episodes_per_s"] > 0 for row in result["generation"])
