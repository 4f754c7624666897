"""Bad input to ``agents.evaluate`` and ``agents.render``: exit status 2 and a one-line reason, never a traceback."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("torch")

from agents import render as R  # noqa: E402
from agents.checkpoint import build_policy, save_policy  # noqa: E402
from agents.evaluate import load_layouts  # noqa: E402
from agents.evaluate import main as evaluate_main  # noqa: E402
from hrm_gym.core.grid import AGENT, NEST  # noqa: E402

HRM_IDS = ("HRMForaging-v0", "HRMForagingChase-v0", "HRMMaze-Hard-v0", "HRMMaze-v0", "HRMSudoku-v0")
PROBE = "hrm_cli_probe_module"  # an importable module that must never be imported


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    """An untrained small MLP policy for HRMForaging-v0."""
    directory = tmp_path_factory.mktemp("mlp_ckpt")
    save_policy(directory, build_policy(gym.make("HRMForaging-v0"), "mlp", {"net_arch": [8]}), "HRMForaging-v0", {},
                sb3_zip=False)  # fmt: skip
    return str(directory)


@pytest.fixture
def probe_module(tmp_path, monkeypatch):
    """``PROBE`` on ``sys.path``: importing it would register ``{PROBE}:Env-v0``."""
    (tmp_path / f"{PROBE}.py").write_text("raise RuntimeError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    assert PROBE not in sys.modules


def call(main, capsys, *argv) -> tuple[int, str, str]:
    """``main(argv)``'s exit status (returned, or raised by argparse), stdout and stderr."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clean_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]  # after argparse's usage lines, if any
    assert "error: " in line, err
    for needle in needles:
        assert needle in line, err


# ---- 1. --layouts ------------------------------------------------------------------------
def foraging_layout(seed: int) -> np.ndarray:
    obs, _ = gym.make("HRMForaging-v0").reset(seed=seed)
    return np.where(obs == AGENT, NEST, obs)  # the agent starts on the nest


def write_text(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def write_npz(path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    ("make_file", "needles"),
    [
        (lambda p: write_npz(p / "empty.npz", layouts=np.zeros((0, 16, 16), np.uint8)), ["empty.npz", "no layouts"]),
        (lambda p: write_text(p / "t.npz", "hello\n"), ["t.npz", "is not an .npz file"]),
        (lambda p: write_npz(p / "k.npz", grids=np.zeros((1, 16, 16), np.uint8)), ["no array 'layouts'", "grids"]),
        (
            lambda p: write_npz(p / "s.npz", layouts=np.zeros((2, 5, 5), np.uint8)),
            ["s.npz", "(2, 5, 5)", "(n, 16, 16)"],
        ),
        (lambda p: write_npz(p / "d.npz", layouts=np.zeros((5, 5), np.uint8)), ["d.npz", "3-D array"]),
        (
            lambda p: write_npz(p / "c.npz", layouts=np.zeros((1, 16, 16), np.uint8)),
            ["c.npz", "layouts[0] does not fit"],
        ),
        (lambda p: str(p / "none.npz"), ["no layouts file"]),
    ],
    ids=["empty", "text-file", "missing-array", "wrong-shape", "2-d", "bad-content", "missing-file"],
)
def test_evaluate_bad_layouts_file(make_file, needles, checkpoint, tmp_path, capsys):
    path = make_file(tmp_path)
    code, out, err = call(evaluate_main, capsys, "--checkpoint", checkpoint, "--layouts", path)
    assert_clean_error(code, err, *needles)
    assert out == ""


def test_evaluate_good_layouts_file_still_runs(checkpoint, tmp_path, capsys):
    path = write_npz(tmp_path / "ok.npz", layouts=np.stack([foraging_layout(1)]))
    code, out, err = call(evaluate_main, capsys, "--checkpoint", checkpoint, "--layouts", path,
                          "--env-kwargs", '{"max_steps": 4}', "--json")  # fmt: skip
    assert code == 0, err
    assert '"episodes": 1' in out
    # Layouts are checked against the env as made with the kwargs given (a larger grid here).
    with pytest.raises(ValueError, match=r"needs \(n, 20, 20\)"):
        load_layouts(path, "HRMForaging-v0", {"size": 20})


# ---- 2. --env ----------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["HRMNope-v0", f"{PROBE}:Env-v0"])
def test_unknown_env_id_lists_the_registered_ones(env_id, checkpoint, probe_module, tmp_path, capsys):
    for main, output in ((evaluate_main, []), (R.main, ["--gif", tmp_path / "a.gif"])):
        code, _, err = call(main, capsys, "--checkpoint", checkpoint, "--env", env_id, *output)
        assert_clean_error(code, err, f"unknown env id {env_id!r}", "allowed: " + ", ".join(HRM_IDS))
    code, _, err = call(R.main, capsys, "--expert", "--env", env_id, "--gif", tmp_path / "a.gif")
    assert_clean_error(code, err, f"unknown env id {env_id!r}")


def test_checkpoint_of_an_unregistered_env_is_refused_unimported(probe_module, tmp_path, capsys):
    policy = build_policy(gym.make("HRMForaging-v0"), "mlp", {"net_arch": [8]})
    save_policy(tmp_path / "ck", policy, f"{PROBE}:Env-v0", {}, sb3_zip=False)
    for main, output in ((evaluate_main, []), (R.main, ["--gif", tmp_path / "a.gif"])):
        code, _, err = call(main, capsys, "--checkpoint", tmp_path / "ck", *output)
        assert_clean_error(code, err, f"saved for env '{PROBE}:Env-v0', which is not registered", "HRMMaze-v0")


# ---- 3. --env-kwargs ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[1,2]", ["argument --env-kwargs", "must be a JSON object", "'[1,2]'"]),
        ("3", ["argument --env-kwargs", "must be a JSON object", "'3'"]),
        ("{nope", ["argument --env-kwargs", "not valid JSON", "'{nope'"]),
        ('{"bogus": 1}', ['{"bogus": 1}', "takes no 'bogus'", "its kwargs: size, max_steps"]),
        ('{"max_episode_steps": 3}', ["takes no 'max_episode_steps'"]),
        ('{"size": 4}', ['{"size": 4} do not fit HRMForaging-v0', "size must be"]),
        ('{"size": "big"}', ['{"size": "big"} do not fit HRMForaging-v0']),
    ],
)
def test_evaluate_bad_env_kwargs(text, needles, checkpoint, capsys):
    code, out, err = call(evaluate_main, capsys, "--checkpoint", checkpoint, "--env-kwargs", text)
    assert_clean_error(code, err, *needles)
    assert out == ""


@pytest.mark.parametrize(
    ("text", "needle"),
    [("3", "must be a JSON object"), ('{"bogus": 1}', "takes no 'bogus'"), ('{"size": "big"}', "do not fit")],
)
def test_render_bad_env_kwargs(text, needle, tmp_path, capsys):
    code, _, err = call(R.main, capsys, "--expert", "--env", "HRMMaze-v0", "--env-kwargs", text,
                        "--gif", tmp_path / "a.gif")  # fmt: skip
    assert_clean_error(code, err, needle)
    assert not (tmp_path / "a.gif").exists()


# ---- --checkpoint ------------------------------------------------------------------------
def test_missing_or_unreadable_checkpoint(tmp_path, capsys):
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    for main, output in ((evaluate_main, []), (R.main, ["--gif", tmp_path / "a.gif"])):
        code, _, err = call(main, capsys, "--checkpoint", tmp_path / "nowhere", *output)
        assert_clean_error(code, err, "no policy checkpoint at")
        code, _, err = call(main, capsys, "--checkpoint", tmp_path / "text.pt", *output)
        assert_clean_error(code, err, "text.pt is not a readable policy checkpoint")


# ---- 4. --human without a display --------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"SDL_VIDEODRIVER": None, "DISPLAY": None, "WAYLAND_DISPLAY": None}, "neither DISPLAY nor WAYLAND_DISPLAY"),
        ({"SDL_VIDEODRIVER": "dummy", "DISPLAY": ":0"}, "SDL_VIDEODRIVER=dummy"),
        ({"SDL_VIDEODRIVER": "offscreen", "WAYLAND_DISPLAY": "wayland-0"}, "SDL_VIDEODRIVER=offscreen"),
    ],
)
def test_human_without_a_display_fails_before_any_work(env, reason, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sys, "platform", "linux")
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    # The checkpoint does not exist: the display is checked first, before any loading.
    code, _, err = call(R.main, capsys, "--checkpoint", tmp_path / "nowhere", "--human")
    assert_clean_error(code, err, "--human needs a display", reason, "--gif PATH.gif")
    assert "no policy checkpoint" not in err
    with pytest.raises(R.RenderError, match="--human needs a display"):
        R.Window()


def test_display_detection(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    assert R.no_display_reason("") is None and R.no_display_reason("x11") is None
    monkeypatch.delenv("DISPLAY")
    assert R.no_display_reason("kmsdrm") is None  # a console driver needs no X or Wayland display
    assert R.no_display_reason("wayland,x11") is not None
    monkeypatch.setattr(sys, "platform", "darwin")
    assert R.no_display_reason("") is None and R.no_display_reason("dummy") is not None
