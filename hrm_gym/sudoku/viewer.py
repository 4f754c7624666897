"""Pictures of a Sudoku board: pygame (window or RGB array) and plain text.

Givens are drawn dark and bold, digits the agent placed in blue, and the last rejected move
in red on a tinted cell, so a viewer tells at once what was given, what was played and what
ended the episode. ``rgb_array`` draws off-screen and needs no display.
"""

from __future__ import annotations

import numpy as np

from hrm_gym.core.render import PygameWindow

BACKGROUND = (250, 250, 245)
CELL = (255, 255, 252)
GIVEN_CELL = (232, 232, 226)
THIN_LINE = (190, 190, 180)
THICK_LINE = (40, 40, 40)
GIVEN_DIGIT = (25, 25, 25)
PLACED_DIGIT = (30, 90, 210)
WRONG_DIGIT = (210, 35, 35)
WRONG_CELL = (255, 215, 210)
TEXT = (30, 30, 30)

#: A rejected move to show in red: ``(row, col, digit)``.
Move = tuple[int, int, int]


def board_to_ansi(board: np.ndarray, givens: np.ndarray, status: str = "", wrong_move: Move | None = None) -> str:
    """Text picture: givens as ``5``, placed digits as ``5'``, empty cells as ``.``; a
    rejected move is shown as ``!`` after the cell it targeted, and spelled out in ``status``."""
    lines = []
    for r in range(9):
        if r in (3, 6):
            lines.append("-------+-------+-------")
        cells = []
        for c in range(9):
            d = int(board[r, c])
            mark = "'" if d and not givens[r, c] else " "
            if wrong_move is not None and wrong_move[:2] == (r, c):
                mark = "!"
            cells.append(f"{d if d else '.'}{mark}")
        lines.append(" " + "| ".join("".join(cells[k : k + 3]) for k in (0, 3, 6)).rstrip())
    if status:
        lines.append(status)
    return "\n".join(lines) + "\n"


class SudokuRenderer(PygameWindow):
    """Draws a board with pygame; one instance per environment."""

    def __init__(self, cell_px: int = 44, title: str = "hrm-gym Sudoku"):
        self.cell_px, self.title = cell_px, title
        self.margin = 6
        self.status_px = 26
        side = 9 * cell_px + 2 * self.margin
        self.size = (side, side + self.status_px)
        self._window = None
        self._clock = None
        self._fonts = None

    def _pygame(self):
        import pygame  # imported lazily: environments that never render never load SDL

        if not pygame.get_init():
            pygame.init()
        if self._fonts is None:
            pygame.font.init()
            digit_px = int(self.cell_px * 0.8)
            self._fonts = {
                "given": pygame.font.SysFont(None, digit_px, bold=True),
                "placed": pygame.font.SysFont(None, digit_px),
                "small": pygame.font.SysFont(None, int(self.cell_px * 0.45), bold=True),
                "status": pygame.font.SysFont(None, 22),
            }
        return pygame

    def draw(
        self,
        board: np.ndarray,
        givens: np.ndarray,
        status: str = "",
        wrong_move: Move | None = None,
    ):
        """Draw ``board`` (``givens`` marks the given cells) on a new surface."""
        pygame = self._pygame()
        surface = pygame.Surface(self.size)
        surface.fill(BACKGROUND)
        px, m = self.cell_px, self.margin
        for r in range(9):
            for c in range(9):
                rect = pygame.Rect(m + c * px, m + r * px, px, px)
                d = int(board[r, c])
                is_wrong = wrong_move is not None and wrong_move[:2] == (r, c)
                fill = WRONG_CELL if is_wrong else (GIVEN_CELL if givens[r, c] else CELL)
                pygame.draw.rect(surface, fill, rect)
                pygame.draw.rect(surface, THIN_LINE, rect, 1)
                if d:
                    font = self._fonts["given" if givens[r, c] else "placed"]
                    color = GIVEN_DIGIT if givens[r, c] else PLACED_DIGIT
                    text = font.render(str(d), True, color)
                    surface.blit(text, text.get_rect(center=rect.center))
                if is_wrong:
                    attempted = str(wrong_move[2])
                    if d:  # the move tried to overwrite a filled cell: show it in the corner
                        text = self._fonts["small"].render(attempted, True, WRONG_DIGIT)
                        surface.blit(text, (rect.x + 3, rect.y + 2))
                    else:
                        text = self._fonts["placed"].render(attempted, True, WRONG_DIGIT)
                        surface.blit(text, text.get_rect(center=rect.center))
        for k in range(0, 10, 3):
            offset = m + k * px
            pygame.draw.line(surface, THICK_LINE, (m, offset), (m + 9 * px, offset), 3)
            pygame.draw.line(surface, THICK_LINE, (offset, m), (offset, m + 9 * px), 3)
        if status:
            text = self._fonts["status"].render(status, True, TEXT)
            surface.blit(text, (m, 9 * px + 2 * m + 2))
        return surface
