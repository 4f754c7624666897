"""Watch a policy (or an expert) play: greedy rollouts in a pygame window or an animated GIF/MP4.

    python -m agents.render --checkpoint DIR [--env ID] [--env-kwargs JSON] [--episodes N]
                            [--seed S] [--layouts FILE.npz] [--fps F] (--human | --gif FILE)
    python -m agents.render --expert [default|blind] --env ID ... (--human | --gif FILE)
    python -m agents.render --checkpoint DIR --compare-expert blind ...     (side by side)

Every frame is the env's own ``rgb_array`` picture with a caption strip under it: who plays,
the episode, the step count, the action chosen in the state shown and the reasoning segments
(HRM ACT segments) that decision used; a maze policy with a per-cell next-move head also shades
the route it plans from the agent (``--carry-plan``, ``--max-segments`` as in
``agents.evaluate``); the last frame of an episode names its outcome
(success / caught / timeout / failed). Episode ``i`` starts from
``agents.evaluate.test_seeds(seed, episodes)[i]`` (the episodes ``agents.evaluate`` scores), or
from the ``i``-th layout of ``--layouts``. ``--compare-expert`` / ``--compare-checkpoint``
render a second player next to the first on the same episodes; the side that finishes first
keeps showing its last frame. GIFs and MP4s need no display (``SDL_VIDEODRIVER=dummy`` is set
for them). Bad input exits with status 2 and a message saying what is wrong.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Expert kinds ``--expert`` / ``--compare-expert`` take: the env's registered expert, or the
#: enemy-blind shortest path (Foraging's expert) for the Foraging envs.
EXPERT_KINDS = ("default", "blind")
BLIND_ENVS = ("HRMForagingChase-v0", "HRMForaging-v0")
#: How many frame durations the last frame of an episode stays up (GIF and window).
END_HOLD_FRAMES = 8
CAPTION_FONT_PX = 20
CAPTION_LINE_PX = 19
CAPTION_PAD_PX = 5
PANEL_GAP_PX = 8
BACKGROUND = (250, 250, 245)
TEXT = (30, 30, 30)
OUTCOME_COLORS = {
    "success": (30, 140, 60),
    "caught": (200, 40, 40),
    "timeout": (200, 120, 20),
    "failed": (200, 40, 40),
}


class RenderError(ValueError):
    """Bad input to the renderer (reported with exit status 2)."""


# ---- players ---------------------------------------------------------------------------
@dataclass
class Player:
    """Something that acts in the env: a policy or an expert, with a label for the caption."""

    label: str
    act: Callable[[np.ndarray, dict[str, Any]], tuple[int, int | None]]
    reset: Callable[[], None]
    #: Most reasoning segments one decision can use (None: not an adaptive reasoner), over all
    #: the symmetric views that vote on it (``views``).
    max_segments: int | None = None
    views: int = 1
    #: The cells the latest decision plans to walk (a maze policy with a per-cell next-move
    #: head: :func:`agents.policy.planned_route`), shaded on the frame; None: no plan to show.
    plan: Callable[[np.ndarray], np.ndarray | None] | None = None


def policy_player(
    policy, label: str, loop_escape: bool = False, carry_plan: bool = False, max_segments: int | None = None
) -> Player:
    """A greedy SB3 policy as a player; HRM policies report the segments of each decision.

    ``loop_escape``: decisions through :class:`agents.evaluate.LoopEscape` (a revisited
    observation gets the best move not yet taken from it), as ``agents.evaluate --loop-escape``;
    ``carry_plan``: through :class:`agents.evaluate.CarriedPlan` (each decision starts from the
    states the previous one ended with); ``max_segments``: the ACT maximum at test time.
    """
    from agents.evaluate import CarriedPlan, LoopEscape, policy_actor
    from agents.policy import HRMActorCriticPolicy, planned_route

    policy.set_training_mode(False)
    is_hrm = isinstance(policy, HRMActorCriticPolicy)
    if (carry_plan or max_segments) and not is_hrm:
        raise RenderError("--carry-plan and --max-segments need an HRM policy checkpoint")
    if max_segments is not None:
        policy.max_segments = max_segments
    memory = LoopEscape(policy) if loop_escape else CarriedPlan(policy) if carry_plan else None
    batch_act = (lambda obs: memory(obs, [0])) if memory is not None else policy_actor(policy, deterministic=True)
    views = 1 if carry_plan else policy.decision_views if is_hrm else 1
    most = (policy.max_segments or policy.model_config.halt_max_steps) * views if is_hrm else None

    def act(obs: np.ndarray, info: dict[str, Any]) -> tuple[int, int | None]:
        actions, reasoning = batch_act(np.asarray(obs)[None])
        return int(actions[0]), (int(round(float(reasoning[0]))) if is_hrm else None)

    def reset() -> None:  # a new episode: the decision memory starts empty
        if memory is not None:
            memory.end_episode(0)

    def plan(obs: np.ndarray) -> np.ndarray | None:
        logits = policy.last_cell_logits
        return None if logits is None else planned_route(obs, logits[0].float().argmax(-1).cpu().numpy())

    name = f"{label} + loop escape" if loop_escape else f"{label} + carried plan" if carry_plan else label
    shows_plan = is_hrm and policy.model_config.aux_vocab_out > 0
    return Player(name, act, reset, most, views, plan if shows_plan else None)


def expert_player(env_id: str, kind: str, env_kwargs: dict[str, Any]) -> Player:
    """The env's expert (``kind="default"``) or the enemy-blind one (``"blind"``)."""
    if kind not in EXPERT_KINDS:
        raise RenderError(f"unknown expert kind {kind!r}; allowed: {', '.join(EXPERT_KINDS)}")
    if kind == "blind":
        if env_id not in BLIND_ENVS:
            raise RenderError(f"the blind expert plays {' and '.join(BLIND_ENVS)} only, not {env_id}")
        from expert.chase import BlindChaseExpert

        expert = BlindChaseExpert(**env_kwargs)
        label = "blind expert"
    else:
        from expert import make_expert

        expert = make_expert(env_id, **env_kwargs)
        label = f"expert ({type(expert).__name__})"

    def act(obs: np.ndarray, info: dict[str, Any]) -> tuple[int, int | None]:
        return int(expert.act(obs, info)), None

    return Player(label, act, expert.reset)


# ---- rollouts --------------------------------------------------------------------------
@dataclass
class FrameRecord:
    """One state of an episode: its picture, and the decision taken in it (none at the end)."""

    image: np.ndarray
    step: int
    action: str | None = None
    reasoning: int | None = None
    outcome: str | None = None
    plan_cells: int | None = None  # cells on the shaded planned route


def episode_outcome(terminated: bool, truncated: bool, info: dict[str, Any]) -> str:
    """``success``, ``caught``, ``timeout`` or ``failed``, judged as ``agents.evaluate`` does."""
    caught = bool(info.get("caught", False))
    solved = info.get("solved") if "solved" in info else (terminated and not caught)
    if caught:
        return "caught"
    if solved:
        return "success"
    return "timeout" if truncated else "failed"


def action_label(env, action: int) -> str:
    """The action in words: a move for grid envs, ``"9 at r3c5"`` for Sudoku, else its number."""
    from hrm_gym.core.env import GridWorldEnv
    from hrm_gym.core.grid import ACTION_NAMES
    from hrm_gym.sudoku.env import N_ACTIONS, SudokuEnv, decode_action

    if isinstance(env.unwrapped, GridWorldEnv) and 0 <= action < len(ACTION_NAMES):
        return ACTION_NAMES[action]
    if isinstance(env.unwrapped, SudokuEnv) and 0 <= action < N_ACTIONS:
        row, col, digit = decode_action(action)
        return f"{digit} at r{row + 1}c{col + 1}"
    return f"#{action}"


def rollout(env, player: Player, reset_kwargs: dict[str, Any]) -> list[FrameRecord]:
    """Play one episode; one record per state visited, the last one with the outcome."""
    player.reset()
    obs, info = env.reset(**reset_kwargs)
    frames: list[FrameRecord] = []
    while True:
        image = np.array(env.render(), dtype=np.uint8, copy=True)
        action, reasoning = player.act(obs, info)
        route = player.plan(obs) if player.plan is not None else None
        if route is not None:
            shade_cells(image, route)
        frames.append(FrameRecord(image, int(info.get("steps", len(frames))), action_label(env, action), reasoning,
                                  plan_cells=None if route is None else int(route.sum())))  # fmt: skip
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            image = np.array(env.render(), dtype=np.uint8, copy=True)
            step = int(info.get("steps", len(frames)))
            frames.append(FrameRecord(image, step, outcome=episode_outcome(terminated, truncated, info)))
            return frames


# ---- pictures --------------------------------------------------------------------------
PLAN_COLOR = np.array((40, 170, 230), dtype=np.float32)


def shade_cells(image: np.ndarray, cells: np.ndarray, alpha: float = 0.45) -> None:
    """Tint the grid cells marked in ``cells`` ``(H, W)`` on an env picture, in place (the grid
    fills the picture's width; a status strip may follow it below)."""
    px = image.shape[1] // cells.shape[1]
    for row, col in np.argwhere(cells):
        block = image[row * px : (row + 1) * px, col * px : (col + 1) * px, :3]
        block[...] = (block * (1 - alpha) + PLAN_COLOR * alpha).astype(np.uint8)


def caption_lines(player: Player, record: FrameRecord, episode: int, episodes: int) -> list[str]:
    """The caption text of one frame: who plays, the step and decision, then the outcome."""
    lines = [f"{player.label}  ep {episode + 1}/{episodes}"]
    if record.outcome is None:
        decision = f"step {record.step}  -> {record.action}"
        if player.max_segments is not None:
            decision += f"  reasoning {record.reasoning}/{player.max_segments} segments"
            if player.views > 1:
                decision += f" ({player.views} views)"
        plan = "" if record.plan_cells is None else f"planned route (shaded): {record.plan_cells} cells"
        lines += [decision, plan]
    else:
        lines.append(f"step {record.step}  (episode over)")
        lines.append(f"{record.outcome.upper()} after {record.step} steps")
    return lines


class Captioner:
    """Draws frames with a caption strip and lays players side by side (pygame, off-screen)."""

    def __init__(self):
        import pygame

        pygame.font.init()
        self._pygame = pygame
        self._font = pygame.font.SysFont(None, CAPTION_FONT_PX)
        self._bold = pygame.font.SysFont(None, CAPTION_FONT_PX, bold=True)

    @staticmethod
    def caption_height(n_lines: int = 3) -> int:
        return n_lines * CAPTION_LINE_PX + 2 * CAPTION_PAD_PX

    def panel(self, image: np.ndarray, lines: Sequence[str], outcome: str | None):
        """The env picture with the caption strip under it, as a pygame surface."""
        pygame = self._pygame
        height, width = image.shape[:2]
        surface = pygame.Surface((width, height + self.caption_height(len(lines))))
        surface.fill(BACKGROUND)
        surface.blit(pygame.surfarray.make_surface(np.ascontiguousarray(image[:, :, :3].transpose(1, 0, 2))), (0, 0))
        y = height + CAPTION_PAD_PX
        for index, line in enumerate(lines):
            is_outcome = outcome is not None and index == len(lines) - 1
            font = self._bold if index == 0 or is_outcome else self._font
            text = font.render(line, True, OUTCOME_COLORS.get(outcome, TEXT) if is_outcome else TEXT)
            if text.get_width() > width - 2 * CAPTION_PAD_PX:  # too long: squeeze it to fit
                scale = (width - 2 * CAPTION_PAD_PX) / text.get_width()
                text = pygame.transform.smoothscale(
                    text, (width - 2 * CAPTION_PAD_PX, max(1, int(text.get_height() * scale)))
                )
            surface.blit(text, (CAPTION_PAD_PX, y))
            y += CAPTION_LINE_PX
        return surface

    def side_by_side(self, panels: Sequence[Any]) -> np.ndarray:
        """Panels next to each other, as one ``(H, W, 3) uint8`` frame."""
        pygame = self._pygame
        width = sum(p.get_width() for p in panels) + PANEL_GAP_PX * (len(panels) - 1)
        height = max(p.get_height() for p in panels)
        canvas = pygame.Surface((width, height))
        canvas.fill(BACKGROUND)
        x = 0
        for p in panels:
            canvas.blit(p, (x, 0))
            x += p.get_width() + PANEL_GAP_PX
        return np.ascontiguousarray(pygame.surfarray.array3d(canvas).transpose(1, 0, 2))


def episode_frames(
    captioner: Captioner,
    players: Sequence[Player],
    episodes_frames: Sequence[list[FrameRecord]],
    episode: int,
    episodes: int,
) -> list[np.ndarray]:
    """The composed frames of one episode; a player that is done keeps its last frame."""
    length = max(len(frames) for frames in episodes_frames)
    composed = []
    for t in range(length):
        panels = []
        for player, frames in zip(players, episodes_frames):
            record = frames[min(t, len(frames) - 1)]
            panels.append(
                captioner.panel(record.image, caption_lines(player, record, episode, episodes), record.outcome)
            )
        composed.append(captioner.side_by_side(panels))
    return composed


# ---- output ----------------------------------------------------------------------------
def mp4_writer_available() -> bool:
    """Whether imageio can write MP4 here (it needs the imageio-ffmpeg package)."""
    return importlib.util.find_spec("imageio_ffmpeg") is not None


def check_output_path(path: str | Path) -> Path:
    """``path`` if a ``.gif`` / ``.mp4`` can be written there, else a ``RenderError`` saying why."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise RenderError(f"--gif {path}: the file must end in .gif or .mp4, not {suffix or '(no extension)'!r}")
    if suffix == ".mp4" and not mp4_writer_available():
        raise RenderError(
            f"--gif {path}: writing MP4 needs an ffmpeg writer for imageio, and none is installed "
            "(pip install imageio-ffmpeg); or write a .gif"
        )
    if path.is_dir():
        raise RenderError(f"--gif {path}: that is a directory, not a file path")
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise RenderError(f"--gif {path}: cannot write there ({exc.strerror or exc})") from exc
    if not existed:
        path.unlink()
    return path


def gif_frames(frames: Sequence[np.ndarray], include: Sequence[int] = (), samples: int = 24):
    """``frames`` as palette images sharing one palette.

    Pillow's default per-frame quantizer costs ~50 ms a frame; one palette built from a sample
    of frames (``include``, e.g. the episodes' last frames with the outcome's colour, the first,
    the last and evenly spaced ones) and mapped without dithering costs
    ~1 ms, and the colours do not flicker between frames.
    """
    from PIL import Image

    picks = sorted({0, len(frames) - 1, *include, *np.linspace(0, len(frames) - 1, samples).astype(int).tolist()})
    sample = Image.fromarray(np.concatenate([frames[i] for i in picks], axis=0))
    palette = sample.quantize(colors=255, method=Image.Quantize.FASTOCTREE)
    return [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]


def write_video(path: Path, frames: Sequence[np.ndarray], durations_ms: Sequence[int], fps: float) -> None:
    """Write ``frames`` as an animated GIF (per-frame durations, looping) or an MP4."""
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    if path.suffix.lower() == ".gif":
        held = [i for i, d in enumerate(durations_ms) if d > min(durations_ms)]  # episode ends
        pictures = gif_frames(frames, include=held)
        pictures[0].save(
            partial, format="GIF", save_all=True, append_images=pictures[1:], duration=list(durations_ms), loop=0
        )
    else:
        import imageio.v3 as iio

        # Constant frame rate: repeat a held frame; sizes rounded up to even for H.264.
        base = 1000.0 / fps
        video = [f for f, d in zip(frames, durations_ms) for _ in range(max(1, round(d / base)))]
        height, width = video[0].shape[:2]
        pad = ((0, height % 2), (0, width % 2), (0, 0))
        stacked = np.stack([np.pad(f, pad, constant_values=255) for f in video])
        iio.imwrite(partial, stacked, plugin="FFMPEG", fps=fps, macro_block_size=1)
    partial.replace(path)


def no_display_reason(driver: str | None = None) -> str | None:
    """Why a pygame window would be invisible here, or None when a display seems available.

    ``driver``: SDL's video driver(s), comma-separated (default ``$SDL_VIDEODRIVER``).
    """
    if driver is None:
        driver = os.environ.get("SDL_VIDEODRIVER", "")
    drivers = [d.strip().lower() for d in driver.split(",") if d.strip()]
    if drivers and all(d in ("dummy", "offscreen") for d in drivers):
        return f"SDL_VIDEODRIVER={driver} draws into no visible window"
    has_display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not has_display and all(d in ("x11", "wayland") for d in drivers):
        return "neither DISPLAY nor WAYLAND_DISPLAY is set"
    return None


def no_display_message(reason: str) -> str:
    return f"--human needs a display ({reason}); write the episodes to a file instead: --gif PATH.gif (or PATH.mp4)"


class Window:
    """A pygame window showing frames at a fixed rate; closing it (or Esc / Q) stops the show.

    Raises ``RenderError`` at once where no visible window can open (:func:`no_display_reason`).
    """

    def __init__(self, title: str = "hrm-gym render"):
        import pygame

        reason = no_display_reason()
        if reason is None:
            try:
                pygame.display.init()
            except pygame.error as exc:
                reason = f"pygame cannot open one: {exc}"
            else:
                reason = no_display_reason(pygame.display.get_driver())
        if reason is not None:
            raise RenderError(no_display_message(reason))
        self._pygame = pygame
        self._title = title
        self._screen = None
        self._clock = pygame.time.Clock()

    def show(self, frame: np.ndarray, fps: float, hold_frames: int = 1) -> bool:
        """Show ``frame`` for ``hold_frames`` ticks; False once the user closed the window."""
        pygame = self._pygame
        size = (frame.shape[1], frame.shape[0])
        if self._screen is None or self._screen.get_size() != size:
            try:
                pygame.display.init()
                pygame.display.set_caption(self._title)
                self._screen = pygame.display.set_mode(size)
            except pygame.error as exc:
                raise RenderError(no_display_message(f"pygame cannot open a window: {exc}")) from exc
        self._screen.blit(pygame.surfarray.make_surface(frame.transpose(1, 0, 2)), (0, 0))
        pygame.display.flip()
        for _ in range(hold_frames):
            for event in pygame.event.get():
                if event.type == pygame.QUIT or (
                    event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE, pygame.K_q)
                ):
                    return False
            self._clock.tick(fps)
        return True

    def close(self) -> None:
        self._pygame.display.quit()
        self._screen = None


# ---- the env ---------------------------------------------------------------------------
def make_render_env(env_id: str, env_kwargs: dict[str, Any]):
    """``gym.make(env_id, render_mode="rgb_array", **env_kwargs)``, or a ``RenderError`` saying why not."""
    import gymnasium as gym

    import hrm_gym  # noqa: F401  (registers the envs)

    if "render_mode" in env_kwargs:
        raise RenderError("do not pass render_mode in --env-kwargs: the renderer sets it")
    try:
        env = gym.make(env_id, render_mode="rgb_array", **env_kwargs)
    except gym.error.Error as exc:  # unknown or unloadable env id
        raise RenderError(f"cannot make env {env_id!r}: {exc}") from exc
    except TypeError as exc:  # an env kwarg the env does not take
        raise RenderError(f"--env-kwargs {json.dumps(env_kwargs)} do not fit {env_id}: {exc}") from exc
    if "rgb_array" not in env.metadata.get("render_modes", []):
        env.close()
        raise RenderError(f"{env_id} cannot render pictures (its render modes: {env.metadata.get('render_modes')})")
    return env


# ---- rendering -------------------------------------------------------------------------
def render(
    players: Sequence[Player],
    env_id: str,
    env_kwargs: dict[str, Any],
    resets: Sequence[dict[str, Any]],
    *,
    fps: float | None = None,
    gif: str | Path | None = None,
    human: bool = False,
) -> dict[str, Any]:
    """Roll every player out on every reset, then show the frames or write them to ``gif``.

    Returns a summary: the outcome and steps of each player in each episode, and the frame count.
    """
    if human == (gif is not None):
        raise RenderError("give exactly one of --human (a window) or --gif FILE")
    path = check_output_path(gif) if gif is not None else None
    envs = []
    try:
        for _ in players:
            envs.append(make_render_env(env_id, env_kwargs))
        fps = float(fps or envs[0].metadata.get("render_fps") or 8)
        frame_ms = int(round(1000 / fps))
        captioner = Captioner()
        window = Window() if human else None
        frames: list[np.ndarray] = []
        durations: list[int] = []
        summary: list[list[dict[str, Any]]] = []
        stopped = False
        for episode, reset_kwargs in enumerate(resets):
            played = [rollout(env, player, reset_kwargs) for env, player in zip(envs, players)]
            summary.append([{"outcome": p[-1].outcome, "steps": p[-1].step} for p in played])
            composed = episode_frames(captioner, players, played, episode, len(resets))
            holds = [1] * (len(composed) - 1) + [END_HOLD_FRAMES]
            if window is not None:
                for frame, hold in zip(composed, holds):
                    if not window.show(frame, fps, hold):
                        stopped = True
                        break
                if stopped:
                    break
            else:
                frames += composed
                durations += [frame_ms * hold for hold in holds]
        if window is not None:
            window.close()
        if path is not None:
            write_video(path, frames, durations, fps)
    finally:
        for env in envs:
            env.close()
    return {
        "players": [p.label for p in players],
        "episodes": summary,
        "frames": len(frames),
        "stopped": stopped,
        "output": str(path) if path else None,
    }


# ---- the command -----------------------------------------------------------------------
def _json_dict(text: str) -> dict[str, Any]:
    from agents.evaluate import env_kwargs_arg

    return env_kwargs_arg(text)


def _env_id(text: str) -> str:
    from agents.evaluate import env_id_arg

    return env_id_arg(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agents.render", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--checkpoint", help="a run directory (or its policy.pt) to play greedily")
    who.add_argument("--expert", nargs="?", const="default", help="play the env's expert instead (default, or 'blind')")
    other = parser.add_mutually_exclusive_group()
    other.add_argument("--compare-checkpoint", help="a second policy, rendered next to the first")
    other.add_argument(
        "--compare-expert", nargs="?", const="default", help="an expert (default or 'blind') next to the first"
    )
    parser.add_argument("--env", type=_env_id, default=None,
                        help="a registered HRM* env id (default: the checkpoint's own env)")  # fmt: skip
    parser.add_argument("--env-kwargs", type=_json_dict, default=None, help="JSON object of env kwargs")
    parser.add_argument("--episodes", type=int, default=None, help="episodes (default 3, or every layout)")
    parser.add_argument("--seed", type=int, default=12345, help="base seed of the episodes (as agents.evaluate)")
    parser.add_argument("--layouts", default=None, help=".npz with array 'layouts' (Sudoku: 'puzzles')")
    parser.add_argument("--fps", type=float, default=None, help="frames per second (default: the env's render_fps)")
    parser.add_argument("--loop-escape", action="store_true",
                        help="checkpoints decide through agents.evaluate.LoopEscape (as agents.evaluate --loop-escape)")  # fmt: skip
    parser.add_argument("--carry-plan", action="store_true",
                        help="HRM checkpoints start each decision from the previous one's states (agents.evaluate --carry-plan)")  # fmt: skip
    parser.add_argument("--max-segments", type=int, default=None,
                        help="HRM checkpoints: the most reasoning segments a decision may take (default: as trained)")  # fmt: skip
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--human", action="store_true", help="show the episodes in a window")
    out.add_argument("--gif", metavar="FILE", help="write an animated .gif (or .mp4 with an ffmpeg writer)")
    return parser


def _load(checkpoint: str, env_id: str | None):
    from agents.evaluate import load_checked_policy

    policy, record = load_checked_policy(checkpoint, env_id)
    if str(checkpoint).startswith("pretrained:"):
        name = str(checkpoint)
    else:
        name = Path(checkpoint).resolve()
        name = name.parent.name if name.is_file() else name.name
    return policy, record, f"{record['policy_type'].upper()} policy {name}"


def episode_resets(env_id: str, seed: int, episodes: int | None, layouts: str | None) -> list[dict[str, Any]]:
    """``reset`` kwargs of the episodes: the evaluation seeds, or the first layouts of a file."""
    from agents.evaluate import load_layouts, test_seeds

    if layouts is None:
        return [{"seed": s} for s in test_seeds(seed, episodes or 3)]
    grids = load_layouts(layouts, env_id)
    if episodes is not None and episodes > len(grids):
        raise RenderError(f"--episodes {episodes} but {layouts} holds only {len(grids)} layouts")
    option_key = "puzzle" if env_id == "HRMSudoku-v0" else "layout"
    return [{"seed": i, "options": {option_key: grid}} for i, grid in enumerate(grids[: episodes or len(grids)])]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the reason (or --help)
        return int(exc.code or 0)
    if args.human and (reason := no_display_reason()) is not None:  # fail before any work
        print(f"error: {no_display_message(reason)}", file=sys.stderr)
        return 2
    if args.gif is not None:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # no display needed for a file
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

    import torch

    # One observation per decision gains nothing from intra-op threads, and on a busy 2-core
    # machine two spinning threads made each decision ~40x slower (0.65 s vs 15 ms measured).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from agents.checkpoint import CheckpointError
    from agents.evaluate import check_env_kwargs, load_layouts

    try:
        if args.episodes is not None and args.episodes < 1:
            raise RenderError(f"--episodes must be >= 1, got {args.episodes}")
        if args.fps is not None and not args.fps > 0:
            raise RenderError(f"--fps must be > 0, got {args.fps}")
        if args.max_segments is not None and args.max_segments < 1:
            raise RenderError(f"--max-segments must be >= 1, got {args.max_segments}")
        if args.carry_plan and args.loop_escape:
            raise RenderError("--carry-plan and --loop-escape are two decision rules: pick one")
        if args.gif is not None:
            check_output_path(args.gif)  # fail before the (slower) loading and rollouts
        players: list[Player] = []
        record = None
        if args.checkpoint is not None:
            policy, record, label = _load(args.checkpoint, args.env)
            env_id = args.env or record["env_id"]
            players.append(policy_player(policy, label, args.loop_escape, args.carry_plan, args.max_segments))
        else:
            if args.env is None:
                raise RenderError("--expert needs --env ID (there is no checkpoint to take the env from)")
            env_id = args.env
        if args.env_kwargs is not None:
            env_kwargs = args.env_kwargs
            if "render_mode" in env_kwargs:
                raise RenderError("do not pass render_mode in --env-kwargs: the renderer sets it")
            check_env_kwargs(env_id, env_kwargs)
        elif record is not None and env_id == record["env_id"]:
            env_kwargs = record["env_kwargs"]
        else:
            env_kwargs = {}
        make_render_env(env_id, env_kwargs).close()  # a bad env id or kwarg fails here, clearly
        if args.expert is not None:
            players.append(expert_player(env_id, args.expert, env_kwargs))
        if args.compare_checkpoint is not None:
            compare, _, label = _load(args.compare_checkpoint, env_id)
            players.append(policy_player(compare, label, args.loop_escape, args.carry_plan, args.max_segments))
        elif args.compare_expert is not None:
            players.append(expert_player(env_id, args.compare_expert, env_kwargs))
        if args.layouts is not None:
            load_layouts(args.layouts, env_id, env_kwargs)  # every layout fits the env, or a clear error
        resets = episode_resets(env_id, args.seed, args.episodes, args.layouts)
        summary = render(players, env_id, env_kwargs, resets, fps=args.fps, gif=args.gif, human=args.human)
    except (RenderError, CheckpointError, ValueError, FileNotFoundError, gym.error.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for episode, results in enumerate(summary["episodes"]):
        text = "; ".join(
            f"{label}: {r['outcome']} in {r['steps']} steps" for label, r in zip(summary["players"], results)
        )
        print(f"episode {episode + 1}: {text}")
    if summary["output"]:
        print(f"wrote {summary['frames']} frames to {summary['output']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
