"""benchmarks/foraging_families.py: Foraging layouts built differently from the env's generator."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import hrm_gym  # noqa: F401  (registers the envs)
from hrm_gym.core.grid import EMPTY, FOOD, NEST, UNREACHABLE, WALL, bfs_distances

SOURCE = Path(__file__).resolve().parents[1] / "benchmarks" / "foraging_families.py"
_spec = importlib.util.spec_from_file_location("benchmark_foraging_families", SOURCE)
families = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(families)


def ends(layout):
    return [tuple(int(v) for v in np.argwhere(layout == code)[0]) for code in (NEST, FOOD)]


@pytest.mark.parametrize("family", families.FAMILIES)
def test_every_layout_is_a_valid_solvable_foraging_layout(family):
    layouts = families.build_family(family, 25, seed=3)
    assert layouts.shape == (25, 16, 16) and layouts.dtype == np.uint8
    env = gym.make("HRMForaging-v0").unwrapped
    for layout in layouts:
        assert (layout == NEST).sum() == 1 and (layout == FOOD).sum() == 1
        assert set(np.unique(layout)) <= {EMPTY, WALL, NEST, FOOD}
        nest, food = ends(layout)
        assert bfs_distances(layout != WALL, nest)[food] != UNREACHABLE
        env.reset(seed=0, options={"layout": layout})  # the env accepts it as it is
    env.close()


def test_detour_layouts_force_a_way_round_and_clutter_keeps_ends_apart():
    assert (families.detours(families.build_family("detour", 40, seed=1)) >= families.MIN_DETOUR).all()
    for layout in families.build_family("clutter", 40, seed=1):
        nest, food = ends(layout)
        assert bfs_distances(layout != WALL, nest)[food] >= families.MIN_CLUTTER_DISTANCE
    # the env's own layouts rarely need a detour; the built ones often do
    own = families.detours(families.build_family("own", 100, seed=1))
    long_walls = families.detours(families.build_family("long_walls", 100, seed=1))
    assert own.mean() < long_walls.mean()


def test_long_walls_are_longer_than_the_generators():
    def longest_run(layout):
        best = 0
        for lines in (layout, layout.T):
            for line in lines:
                run = 0
                for cell in line:
                    run = run + 1 if cell == WALL else 0
                    best = max(best, run)
        return best

    assert min(longest_run(g) for g in families.build_family("long_walls", 30, seed=2)) >= 5
    assert max(longest_run(g) for g in families.build_family("own", 30, seed=2)) <= 8  # crossings may join two


def test_each_family_has_its_own_deterministic_stream():
    a = families.build_family("detour", 10, seed=7)
    assert np.array_equal(a, families.build_family("detour", 10, seed=7))
    assert not np.array_equal(a, families.build_family("detour", 10, seed=8))
    assert not np.array_equal(families.build_family("own", 5, seed=7), families.build_family("long_walls", 5, seed=7))


def test_unknown_family_names_what_is_allowed():
    with pytest.raises(ValueError, match="unknown family 'spiral'.*own, long_walls, detour, clutter"):
        families.build_layout("spiral", np.random.default_rng(0))


def test_saved_sets_load_as_evaluation_layouts(tmp_path, capsys):
    from agents.evaluate import load_layouts

    assert families.main(["--save", str(tmp_path), "--n", "4", "--families", "detour", "clutter"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["families"]["detour"]["detour_ge_4"] == 1.0 and out["rows"] == []
    layouts = load_layouts(tmp_path / "foraging_detour.npz", "HRMForaging-v0")
    assert np.array_equal(layouts, families.build_family("detour", 4, seed=families.parse_args(["--save", "x"]).seed))


def test_bad_arguments_are_refused_with_the_reason(capsys):
    with pytest.raises(SystemExit):
        families.parse_args(["--n", "0", "--save", "x"])
    assert "--n must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        families.parse_args([])
    assert "give --checkpoint" in capsys.readouterr().err


def test_a_shipped_policy_is_scored_on_each_family(capsys):
    assert families.main(["--checkpoint", "pretrained:foraging-bc", "--n", "3", "--families", "own", "detour"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(r["family"], r["episodes"], r["views"]) for r in out["rows"]] == [("own", 3, 1), ("detour", 3, 1)]
    for row in out["rows"]:
        assert 0.0 <= row["success_rate"] <= 1.0 and row["mean_segments"] == 1.0
