"""``python -m agents.render``: GIFs written headless, captions, experts, side by side, bad input."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

from agents import render as R  # noqa: E402
from agents.checkpoint import build_policy, save_policy  # noqa: E402
from agents.evaluate import test_seeds as evaluation_seeds  # noqa: E402
from hrm_gym.core.grid import AGENT, NEST  # noqa: E402

TINY_HRM = {"preset": "cpu_grid16", "hrm_config": {"hidden_size": 16, "num_heads": 2, "halt_max_steps": 2}}
SHORT = '{"max_steps": 6}'
EPISODE_LINE = re.compile(r"episode (\d+): (.*)")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """As ``agents.render.main`` does: single-observation decisions, one thread (restored after)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    """An untrained tiny HRM policy for HRMForaging-v0 (data-only checkpoint)."""
    import torch

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("hrm_ckpt")
    env = gym.make("HRMForaging-v0")
    policy = build_policy(env, "hrm", TINY_HRM)
    save_policy(directory, policy, "HRMForaging-v0", {}, sb3_zip=False)
    return str(directory)


def gif_frames(path) -> tuple[list[np.ndarray], list[int]]:
    """Every frame of a GIF as RGB arrays, with each frame's duration in ms."""
    frames, durations = [], []
    with Image.open(path) as image:
        assert image.format == "GIF"
        for index in range(image.n_frames):
            image.seek(index)
            frames.append(np.asarray(image.convert("RGB")))
            durations.append(image.info["duration"])
    return frames, durations


def printed_steps(out: str) -> list[list[int]]:
    """Steps of every player in every episode, from the command's summary lines."""
    episodes = []
    for match in EPISODE_LINE.finditer(out):
        episodes.append([int(s) for s in re.findall(r"in (\d+) steps", match.group(2))])
    return episodes


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = R.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- the GIF of a policy ---------------------------------------------------------------
def test_policy_gif_headless_has_one_frame_per_state_and_captions(checkpoint, tmp_path, capsys):
    out_path = tmp_path / "policy.gif"
    code, out, err = run(
        capsys,
        "--checkpoint",
        checkpoint,
        "--env-kwargs",
        SHORT,
        "--episodes",
        "2",
        "--fps",
        "10",
        "--gif",
        str(out_path),
    )
    assert code == 0, err
    steps = printed_steps(out)
    assert len(steps) == 2 and all(1 <= s[0] <= 6 for s in steps)
    frames, durations = gif_frames(out_path)
    # One frame per state: the start and one after each step, per episode.
    assert len(frames) == sum(s[0] + 1 for s in steps)
    assert f"wrote {len(frames)} frames" in out
    # The last frame of each episode stays up longer (END_HOLD_FRAMES frame durations).
    ends = np.cumsum([s[0] + 1 for s in steps]) - 1
    assert [i for i, d in enumerate(durations) if d > 100] == list(ends)
    assert durations[0] == 100 and durations[ends[0]] == 100 * R.END_HOLD_FRAMES
    # The caption strip under the env's picture changes with every step and carries text.
    env = gym.make("HRMForaging-v0", render_mode="rgb_array")
    env.reset(seed=0)
    picture_height = env.render().shape[0]
    captions = [f[picture_height:] for f in frames]
    assert captions[0].shape[0] == R.Captioner.caption_height()
    assert len(np.unique(captions[0].reshape(-1, 3), axis=0)) > 2  # text, not a blank strip
    for a, b in zip(captions[: steps[0][0]], captions[1 : steps[0][0] + 1]):
        assert not np.array_equal(a, b)


def test_policy_rollout_reports_reasoning_segments_and_seeds(checkpoint):
    policy, record, label = R._load(checkpoint, None)
    player = R.policy_player(policy, label)
    assert player.max_segments == 2
    env = R.make_render_env("HRMForaging-v0", {"max_steps": 5})
    seed = evaluation_seeds(7, 1)[0]
    frames = R.rollout(env, player, {"seed": seed})
    decisions, last = frames[:-1], frames[-1]
    assert [f.step for f in frames] == list(range(len(frames)))
    assert all(f.reasoning in (1, 2) and f.action in ("up", "down", "left", "right") for f in decisions)
    assert last.outcome in ("success", "timeout") and last.action is None
    lines = R.caption_lines(player, decisions[0], 0, 1)
    assert lines[0] == f"{label}  ep 1/1"
    assert lines[1] == f"step 0  -> {decisions[0].action}  reasoning {decisions[0].reasoning}/2 segments"
    assert R.caption_lines(player, last, 0, 1)[-1] == f"{last.outcome.upper()} after {last.step} steps"
    # Episode i starts from agents.evaluate's i-th test seed: same first picture.
    env.reset(seed=seed)
    assert np.array_equal(frames[0].image, env.render())
    assert R.episode_resets("HRMForaging-v0", 7, 3, None) == [{"seed": s} for s in evaluation_seeds(7, 3)]
    env.close()


def test_loop_escape_player_leaves_a_revisited_state_by_another_move(checkpoint):
    policy, _, label = R._load(checkpoint, None)
    plain, escaping = R.policy_player(policy, label), R.policy_player(policy, label, loop_escape=True)
    assert escaping.label == f"{label} + loop escape"
    obs, _ = gym.make("HRMForaging-v0").reset(seed=3)
    first = plain.act(obs, {})[0]
    assert escaping.act(obs, {})[0] == first  # a first visit: the policy's own move
    assert escaping.act(obs, {})[0] != first  # the same observation again: another move
    escaping.reset()  # a new episode forgets
    assert escaping.act(obs, {})[0] == first


def test_human_window_headless(checkpoint, monkeypatch, capsys):
    """The window code path, drawn by SDL's dummy driver (the display check is bypassed)."""
    monkeypatch.setattr(R, "no_display_reason", lambda driver=None: None)
    code, out, err = run(
        capsys, "--checkpoint", checkpoint, "--env-kwargs", SHORT, "--episodes", "1", "--fps", "1000", "--human"
    )
    assert code == 0, err
    assert len(printed_steps(out)) == 1 and "wrote" not in out


# ---- experts and side by side ----------------------------------------------------------
def test_expert_gif_succeeds_on_the_shortest_path(tmp_path, capsys):
    from expert import make_expert

    out_path = tmp_path / "expert.gif"
    code, out, err = run(
        capsys, "--expert", "--env", "HRMForaging-v0", "--episodes", "1", "--seed", "3", "--gif", str(out_path)
    )
    assert code == 0, err
    assert "expert (ForagingExpert): success in" in out
    # The expert's episode length, played independently on the same seed.
    env = gym.make("HRMForaging-v0")
    expert = make_expert("HRMForaging-v0")
    obs, info = env.reset(seed=evaluation_seeds(3, 1)[0])
    done, steps = False, 0
    while not done:
        obs, _, terminated, truncated, info = env.step(expert.act(obs, info))
        done, steps = terminated or truncated, steps + 1
    assert printed_steps(out) == [[steps]]
    assert len(gif_frames(out_path)[0]) == steps + 1


def test_action_labels():
    grid_env = gym.make("HRMMaze-v0")
    assert [R.action_label(grid_env, a) for a in range(4)] == ["up", "down", "left", "right"]
    sudoku = gym.make("HRMSudoku-v0")
    assert R.action_label(sudoku, 0) == "1 at r1c1"
    assert R.action_label(sudoku, 2 * 81 + 4 * 9 + 8) == "9 at r3c5"


def test_expert_caption_has_no_reasoning_and_outcomes():
    player = R.expert_player("HRMForagingChase-v0", "blind", {})
    assert player.label == "blind expert" and player.max_segments is None
    record = R.FrameRecord(np.zeros((2, 2, 3), np.uint8), step=4, action="up", reasoning=None)
    assert R.caption_lines(player, record, 1, 3) == ["blind expert  ep 2/3", "step 4  -> up", ""]
    assert R.episode_outcome(True, False, {"caught": True}) == "caught"
    assert R.episode_outcome(True, False, {"caught": False}) == "success"
    assert R.episode_outcome(False, True, {"caught": False}) == "timeout"
    assert R.episode_outcome(True, False, {"solved": False}) == "failed"


def test_side_by_side_pads_the_shorter_episode(tmp_path):
    """Planner next to the blind expert on Chase: one frame per state of the longer episode."""
    players = [
        R.expert_player("HRMForagingChase-v0", "default", {}),
        R.expert_player("HRMForagingChase-v0", "blind", {}),
    ]
    resets = R.episode_resets("HRMForagingChase-v0", 12345, 1, None)
    summary = R.render(players, "HRMForagingChase-v0", {}, resets, gif=tmp_path / "chase.gif")
    outcomes = [[r["outcome"] for r in episode] for episode in summary["episodes"]]
    assert all(o in ("success", "caught", "timeout") for episode in outcomes for o in episode)
    lengths = [max(r["steps"] for r in episode) + 1 for episode in summary["episodes"]]
    frames, _ = gif_frames(tmp_path / "chase.gif")
    assert len(frames) == summary["frames"] == sum(lengths)
    env = gym.make("HRMForagingChase-v0", render_mode="rgb_array")
    env.reset(seed=0)
    panel_width = env.render().shape[1]
    assert frames[0].shape[1] == 2 * panel_width + R.PANEL_GAP_PX
    # On this seed the blind expert is caught early while the planner goes on (so the padding
    # is exercised); the side that ended shows its last frame until the other one ends.
    first = summary["episodes"][0]
    assert first[1]["outcome"] == "caught" and first[1]["steps"] < first[0]["steps"], first
    side = [f[:, panel_width + R.PANEL_GAP_PX :] for f in frames]
    held = side[first[1]["steps"] :]
    assert len(held) == first[0]["steps"] - first[1]["steps"] + 1
    assert all(np.array_equal(held[0], h) for h in held)
    assert not np.array_equal(side[0], side[1])
    planner = [f[:, :panel_width] for f in frames]
    assert not any(np.array_equal(a, b) for a, b in zip(planner, planner[1:]))


def test_checkpoint_next_to_blind_expert_on_chase(checkpoint, tmp_path, capsys):
    out_path = tmp_path / "vs.gif"
    code, out, err = run(
        capsys,
        "--checkpoint",
        checkpoint,
        "--env",
        "HRMForagingChase-v0",
        "--env-kwargs",
        SHORT,
        "--compare-expert",
        "blind",
        "--episodes",
        "1",
        "--gif",
        str(out_path),
    )
    assert code == 0, err
    assert "HRM policy" in out and "blind expert:" in out
    (steps,) = printed_steps(out)
    assert len(gif_frames(out_path)[0]) == max(steps) + 1


def test_layouts_file(tmp_path, capsys):
    env = gym.make("HRMForaging-v0")
    grids = []
    for seed in (1, 2):
        obs, _ = env.reset(seed=seed)
        grids.append(np.where(obs == AGENT, NEST, obs))  # the agent starts on the nest
    np.savez(tmp_path / "layouts.npz", layouts=np.stack(grids))
    out_path = tmp_path / "layouts.gif"
    code, out, err = run(
        capsys,
        "--expert",
        "--env",
        "HRMForaging-v0",
        "--layouts",
        str(tmp_path / "layouts.npz"),
        "--gif",
        str(out_path),
    )
    assert code == 0, err
    steps = printed_steps(out)
    assert len(steps) == 2
    frames, _ = gif_frames(out_path)
    assert len(frames) == sum(s[0] + 1 for s in steps)
    env_rgb = gym.make("HRMForaging-v0", render_mode="rgb_array")
    env_rgb.reset(seed=1)  # the same layout as the first one, drawn by the env itself
    first = env_rgb.render()
    assert np.abs(frames[0][: first.shape[0]].astype(int) - first).mean() < 2  # GIF palette rounding
    code, _, err = run(
        capsys,
        "--expert",
        "--env",
        "HRMForaging-v0",
        "--layouts",
        str(tmp_path / "layouts.npz"),
        "--episodes",
        "3",
        "--gif",
        str(out_path),
    )
    assert code == 2 and "holds only 2 layouts" in err


# ---- bad input -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def maze_checkpoint(tmp_path_factory) -> str:
    """A checkpoint for HRMMaze-v0 (11x11 observations): the wrong spaces for Foraging."""
    directory = tmp_path_factory.mktemp("maze_ckpt")
    policy = build_policy(gym.make("HRMMaze-v0"), "mlp", {"net_arch": [8]})
    save_policy(directory, policy, "HRMMaze-v0", {}, sb3_zip=False)
    return str(directory)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--checkpoint", "{tmp}/nowhere", "--gif", "{tmp}/a.gif"], "no policy checkpoint at"),
        (["--checkpoint", "{maze}", "--env", "HRMForaging-v0", "--gif", "{tmp}/a.gif"], "was trained on HRMMaze-v0"),
        (
            ["--checkpoint", "{ckpt}", "--compare-checkpoint", "{maze}", "--gif", "{tmp}/a.gif"],
            "was trained on HRMMaze-v0",
        ),
        (["--checkpoint", "{ckpt}"], "one of the arguments --human --gif is required"),
        (["--checkpoint", "{ckpt}", "--human", "--gif", "{tmp}/a.gif"], "not allowed with argument"),
        (["--gif", "{tmp}/a.gif"], "one of the arguments --checkpoint --expert is required"),
        (["--checkpoint", "{ckpt}", "--gif", "{tmp}/a.gif/b.gif"], "cannot write there"),
        (["--checkpoint", "{ckpt}", "--gif", "{tmp}/missing_dir/b.gif"], "cannot write there"),
        (["--checkpoint", "{ckpt}", "--gif", "{tmp}/dir.gif"], "is a directory"),
        (["--checkpoint", "{ckpt}", "--gif", "{tmp}/a.png"], "must end in .gif or .mp4"),
        (["--expert", "--gif", "{tmp}/a.gif"], "--expert needs --env"),
        (["--expert", "blind", "--env", "HRMMaze-v0", "--gif", "{tmp}/a.gif"], "the blind expert plays"),
        (["--expert", "smart", "--env", "HRMMaze-v0", "--gif", "{tmp}/a.gif"], "unknown expert kind 'smart'"),
        (
            ["--expert", "--env", "HRMNope-v0", "--gif", "{tmp}/a.gif"],
            "unknown env id 'HRMNope-v0'; allowed: HRMForaging-v0",
        ),
        (["--expert", "--env", "HRMMaze-v0", "--env-kwargs", '{{"bogus": 1}}', "--gif", "{tmp}/a.gif"], "bogus"),
        (["--expert", "--env", "HRMMaze-v0", "--env-kwargs", '{{"size": 4}}', "--gif", "{tmp}/a.gif"], "size must be"),
        (["--expert", "--env", "HRMMaze-v0", "--env-kwargs", "{{nope", "--gif", "{tmp}/a.gif"], "not valid JSON"),
        (["--expert", "--env", "HRMMaze-v0", "--env-kwargs", "[1]", "--gif", "{tmp}/a.gif"], "must be a JSON object"),
        (
            ["--expert", "--env", "HRMMaze-v0", "--env-kwargs", '{{"render_mode": "human"}}', "--gif", "{tmp}/a.gif"],
            "render_mode",
        ),
        (
            ["--expert", "--env", "HRMMaze-v0", "--episodes", "0", "--gif", "{tmp}/a.gif"],
            "--episodes must be >= 1, got 0",
        ),
        (["--expert", "--env", "HRMMaze-v0", "--fps", "0", "--gif", "{tmp}/a.gif"], "--fps must be > 0"),
        (["--expert", "--env", "HRMMaze-v0", "--layouts", "{tmp}/none.npz", "--gif", "{tmp}/a.gif"], "no layouts file"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(argv, message, checkpoint, maze_checkpoint, tmp_path, capsys):
    (tmp_path / "a.gif").write_bytes(b"x")  # a regular file: a.gif/b.gif cannot be created
    (tmp_path / "dir.gif").mkdir()
    argv = [a.format(tmp=tmp_path, ckpt=checkpoint, maze=maze_checkpoint) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err, err
    assert "wrote" not in out
    assert (tmp_path / "a.gif").read_bytes() == b"x"  # a failed run leaves files alone


def test_mp4_without_an_ffmpeg_writer_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(R, "mp4_writer_available", lambda: False)
    code, _, err = run(capsys, "--expert", "--env", "HRMMaze-v0", "--gif", str(tmp_path / "a.mp4"))
    assert code == 2 and "ffmpeg" in err and "imageio-ffmpeg" in err
    assert not (tmp_path / "a.mp4").exists()


@pytest.mark.skipif(not R.mp4_writer_available(), reason="no ffmpeg writer for imageio installed")
def test_mp4_when_an_ffmpeg_writer_exists(tmp_path, capsys):
    import imageio.v3 as iio

    code, out, err = run(capsys, "--expert", "--env", "HRMMaze-v0", "--episodes", "1", "--gif", str(tmp_path / "a.mp4"))
    assert code == 0, err
    ((steps,),) = printed_steps(out)
    video = iio.imread(tmp_path / "a.mp4", index=None)
    # Constant frame rate: the held last frame is repeated END_HOLD_FRAMES times.
    assert video.shape[0] == steps + R.END_HOLD_FRAMES
    assert video.shape[1] % 2 == 0 and video.shape[2] % 2 == 0  # H.264 wants even sizes
