"""Play an hrm-gym environment yourself.

    python -m hrm_gym.play HRMForaging-v0 [--seed S] [--env-kwargs JSON]

Grid environments open a pygame window: arrow keys (or W/A/S/D) move, R starts a new episode,
Q or Esc quits; without a display (no ``DISPLAY``/``WAYLAND_DISPLAY`` on Linux, or
``SDL_VIDEODRIVER=dummy``/``offscreen``) it exits with status 2 instead of waiting on a window
nobody can see. ``HRMSudoku-v0`` is played in the terminal: type ``row col digit`` (1-based).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import gymnasium as gym

import hrm_gym
from hrm_gym.core.grid import DOWN, LEFT, RIGHT, UP

#: SDL video drivers that draw nowhere a person can see.
HEADLESS_VIDEO_DRIVERS = ("dummy", "offscreen")


def no_display_reason(environ: dict[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why a pygame window would be invisible here (None when a display looks available)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    driver = environ.get("SDL_VIDEODRIVER", "").strip().lower()
    if driver in HEADLESS_VIDEO_DRIVERS:
        return f"SDL_VIDEODRIVER={driver} draws no window"
    if platform.startswith("linux") and not driver and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return "neither DISPLAY nor WAYLAND_DISPLAY is set"
    return None


def play_grid(env: gym.Env, seed: int | None) -> None:
    import pygame

    keys = {
        pygame.K_UP: UP, pygame.K_w: UP,
        pygame.K_DOWN: DOWN, pygame.K_s: DOWN,
        pygame.K_LEFT: LEFT, pygame.K_a: LEFT,
        pygame.K_RIGHT: RIGHT, pygame.K_d: RIGHT,
    }  # fmt: skip
    env.reset(seed=seed)
    episode_return, over = 0.0, False
    while True:
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (
                event.type == pygame.KEYDOWN and event.key in (pygame.K_q, pygame.K_ESCAPE)
            ):
                env.close()
                return
            if event.type != pygame.KEYDOWN:
                continue
            if event.key == pygame.K_r:
                env.reset()
                episode_return, over = 0.0, False
            elif event.key in keys and not over:
                _, reward, terminated, truncated, info = env.step(keys[event.key])
                episode_return += reward
                if terminated or truncated:
                    over = True
                    outcome = "caught" if info.get("caught") else ("done" if terminated else "out of time")
                    print(
                        f"episode over ({outcome}) after {info['steps']} steps, return {episode_return:g}; R for a new one"
                    )
        pygame.time.wait(10)


def play_sudoku(env: gym.Env, seed: int | None) -> None:
    env.reset(seed=seed)
    print(env.render())
    while True:
        try:
            line = input("row col digit (1-9 each; q quits): ").strip()
        except EOFError:
            return
        if line.lower() in {"q", "quit", "exit"}:
            return
        try:
            row, col, digit = (int(x) for x in line.split())
            if not all(1 <= v <= 9 for v in (row, col, digit)):
                raise ValueError
        except ValueError:
            print(f"could not read {line!r}: type three numbers from 1 to 9, e.g. '1 3 7'")
            continue
        _, reward, terminated, truncated, info = env.step((row - 1) * 81 + (col - 1) * 9 + digit - 1)
        print(env.render())
        if terminated or truncated:
            print(f"episode over: reward {reward:g}, {info}")
            return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("env_id", nargs="?", default="HRMForaging-v0", choices=sorted(hrm_gym.ENV_SPECS))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--env-kwargs", type=json.loads, default={}, help="e.g. '{\"size\": 21}'")
    args = parser.parse_args(argv)
    if args.env_id == "HRMSudoku-v0":
        play_sudoku(gym.make(args.env_id, render_mode="ansi", **args.env_kwargs), args.seed)
        return
    reason = no_display_reason()
    if reason is not None:
        parser.exit(
            2,
            f"hrm-play: no display to open a window on ({reason}), so {args.env_id} cannot be "
            "played here. Run it where a display is available (or set DISPLAY), or get a "
            f"picture instead: python -m agents.render --expert --env {args.env_id} --gif out.gif\n",
        )
    play_grid(gym.make(args.env_id, render_mode="human", **args.env_kwargs), args.seed)


if __name__ == "__main__":
    main(sys.argv[1:])
