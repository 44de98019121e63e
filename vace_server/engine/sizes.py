"""Generation sizes: fit a requested frame size into the model's pixel budget.

Pure Python (no torch) so `functions/` can import it cheaply.
"""

from __future__ import annotations

from fractions import Fraction

__all__ = ["fit_area"]


def fit_area(width: int, height: int, max_area: int, cell: int = 16) -> tuple[int, int]:
    """Largest `cell`-aligned (width, height) within `max_area` pixels for a `width`x`height` frame.

    The model works in 16-px cells (VAE 8 x patch 2). Among all grids of `cols` x `rows` cells
    with `cols * rows <= max_area // cell**2`, `cols <= width // cell` and
    `rows <= height // cell` (never upscaling past the input's own cells), pick the one that
    holds the largest rectangle of the input's exact aspect ratio -- i.e. the most resolution
    left after the frame is cover-cropped into it -- breaking ties by the smaller aspect
    distortion, then by the larger area. This reproduces the 1.3B table of docs/model-inputs.md §3
    (1280x720 -> 832x480, 720x1280 -> 480x832, 960x960 -> 624x624, 832x1088 -> 544x720,
    1088x832 -> 720x544), leaves the 14B sizes unchanged at 1280*720, is symmetric under
    swapping width and height, and returns a cell-aligned input that fits the budget as is.

    Returns: (width, height), both multiples of `cell`.
    Raises: ValueError when the input or the budget is smaller than one cell.
    """
    if width < cell or height < cell:
        raise ValueError(f"frame {width}x{height} is smaller than one {cell}-px cell")
    budget = max_area // (cell * cell)
    if budget < 1:
        raise ValueError(f"area budget {max_area} is smaller than one {cell}-px cell")
    max_cols, max_rows = width // cell, height // cell
    aspect = Fraction(width, height)

    best: tuple[Fraction, Fraction, int] | None = None
    best_grid = (1, 1)
    for rows in range(1, min(max_rows, budget) + 1):
        cols_cap = min(max_cols, budget // rows)
        # For a fixed row count the held area grows with cols up to rows*aspect, then stays;
        # the distortion is smallest next to rows*aspect. So only these candidates matter.
        ideal = rows * aspect
        for cols in {
            min(cols_cap, int(ideal)),
            min(cols_cap, -(-ideal.numerator // ideal.denominator)),
        }:
            if cols < 1:
                continue
            grid = Fraction(cols, rows)
            # Area (in cells) of the largest aspect-exact rectangle inside cols x rows.
            held = min(Fraction(rows * rows) * aspect, Fraction(cols * cols) / aspect)
            distortion = max(grid / aspect, aspect / grid)
            key = (held, -distortion, cols * rows)
            if best is None or key > best:
                best, best_grid = key, (cols, rows)
    return best_grid[0] * cell, best_grid[1] * cell
