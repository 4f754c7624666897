"""Rendering of grid observations: pygame pictures (window or RGB array) and ANSI text.

Every grid environment draws through :class:`GridRenderer`, so all of them look alike and a
new cell code is drawn in one place. ``rgb_array`` needs no display (it draws on an
off-screen surface); ``human`` opens a window and keeps to ``fps``.
"""

from __future__ import annotations

import numpy as np

from hrm_gym.core.grid import AGENT, EMPTY, ENEMY, FOOD, NEST, WALL

COLORS = {
    EMPTY: (236, 236, 228),
    WALL: (60, 63, 72),
    AGENT: (40, 110, 220),
    FOOD: (245, 170, 30),
    NEST: (150, 100, 55),
    ENEMY: (215, 45, 45),
}
GRID_LINE = (205, 205, 195)
BACKGROUND = (250, 250, 245)
TEXT = (30, 30, 30)

ANSI_CHARS = {EMPTY: ".", WALL: "#", AGENT: "A", FOOD: "F", NEST: "N", ENEMY: "E"}


def grid_to_ansi(grid: np.ndarray, status: str = "", chars: dict[int, str] | None = None) -> str:
    """Plain-text picture of ``grid``, one character per cell, with an optional status line."""
    table = chars or ANSI_CHARS
    lines = ["".join(table.get(int(v), "?") for v in row) for row in grid]
    if status:
        lines.append(status)
    return "\n".join(lines) + "\n"


class PygameWindow:
    """What every pygame renderer shares: RGB arrays of surfaces, a window kept to an fps, closing.

    Subclasses set ``title``, ``size``, ``_window = None``, ``_clock = None`` and ``_pygame()``.
    """

    def to_rgb(self, surface) -> np.ndarray:
        """An ``(H, W, 3) uint8`` array of ``surface``."""
        pygame = self._pygame()
        return np.ascontiguousarray(np.transpose(pygame.surfarray.pixels3d(surface), (1, 0, 2)))

    def show(self, surface, fps: int) -> None:
        """Put ``surface`` in the window (opening it on first use) and wait to keep ``fps``."""
        pygame = self._pygame()
        if self._window is None:
            pygame.display.init()
            pygame.display.set_caption(self.title)
            self._window = pygame.display.set_mode(self.size)
            self._clock = pygame.time.Clock()
        pygame.event.pump()
        self._window.blit(surface, (0, 0))
        pygame.display.flip()
        self._clock.tick(fps)

    def close(self) -> None:
        if self._window is not None:
            import pygame

            pygame.display.quit()
            self._window = None


class GridRenderer(PygameWindow):
    """Draws a grid of cell codes with pygame; one instance per environment."""

    def __init__(self, height: int, width: int, cell_px: int = 28, title: str = "hrm-gym"):
        self.height, self.width, self.cell_px, self.title = height, width, cell_px, title
        self.status_px = 26
        self.size = (width * cell_px, height * cell_px + self.status_px)
        self._window = None
        self._clock = None
        self._font = None

    def _pygame(self):
        import pygame  # imported lazily: environments that never render never load SDL

        if not pygame.get_init():
            pygame.init()
        if self._font is None:
            pygame.font.init()
            self._font = pygame.font.SysFont(None, 22)
        return pygame

    def draw(self, grid: np.ndarray, status: str = "", carrying: bool = False):
        """Draw ``grid`` on a new surface; ``carrying`` marks the agent as holding food."""
        pygame = self._pygame()
        surface = pygame.Surface(self.size)
        surface.fill(BACKGROUND)
        px = self.cell_px
        for r in range(self.height):
            for c in range(self.width):
                code = int(grid[r, c])
                rect = pygame.Rect(c * px, r * px, px, px)
                base = WALL if code == WALL else EMPTY
                pygame.draw.rect(surface, COLORS[base], rect)
                pygame.draw.rect(surface, GRID_LINE, rect, 1)
                center = rect.center
                if code == FOOD:
                    pygame.draw.circle(surface, COLORS[FOOD], center, px // 3)
                elif code == NEST:
                    pygame.draw.rect(surface, COLORS[NEST], rect.inflate(-px // 4, -px // 4), border_radius=3)
                elif code == AGENT:
                    pygame.draw.circle(surface, COLORS[AGENT], center, px * 2 // 5)
                    if carrying:
                        pygame.draw.circle(surface, COLORS[FOOD], center, px // 6)
                elif code == ENEMY:
                    half = px * 2 // 5
                    points = [
                        (center[0], center[1] - half),
                        (center[0] + half, center[1] + half),
                        (center[0] - half, center[1] + half),
                    ]
                    pygame.draw.polygon(surface, COLORS[ENEMY], points)
        if status:
            text = self._font.render(status, True, TEXT)
            surface.blit(text, (6, self.height * px + 5))
        return surface
