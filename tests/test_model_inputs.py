from __future__ import annotations

import math

import pytest

from vace_server.model_inputs import fit_area

AREA_1_3B = 832 * 480
AREA_14B = 1280 * 720
SIZES = [(1280, 720), (720, 1280), (960, 960), (832, 1088), (1088, 832)]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1280, 720), (832, 480)),
        ((720, 1280), (480, 832)),
        ((960, 960), (624, 624)),
        ((832, 1088), (544, 720)),
        ((1088, 832), (720, 544)),
    ],
)
def test_reproduces_the_1_3b_table(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert fit_area(*size, AREA_1_3B) == expected


@pytest.mark.parametrize("size", SIZES)
def test_14b_keeps_every_contract_size(size: tuple[int, int]) -> None:
    assert fit_area(*size, AREA_14B) == size


@pytest.mark.parametrize("area", [7168, 3072, AREA_1_3B, AREA_14B])
@pytest.mark.parametrize("size", [*SIZES, (1920, 1080), (640, 360), (1000, 300), (123, 457)])
def test_multiples_of_16_within_budget_aspect_kept(size: tuple[int, int], area: int) -> None:
    w, h = fit_area(*size, area)
    assert w % 16 == 0 and h % 16 == 0 and w >= 16 and h >= 16
    assert w * h <= area
    # Aspect within one cell of the input's, and never upscaled past the input's cells.
    short = min(w, h) / 16
    assert abs(math.log((w / h) / (size[0] / size[1]))) <= math.log((short + 1) / short) + 1e-9
    assert w <= size[0] // 16 * 16 and h <= size[1] // 16 * 16


@pytest.mark.parametrize("size", [(64, 112), (112, 64), (32, 48), (1280, 720)])
def test_aligned_input_within_budget_is_unchanged(size: tuple[int, int]) -> None:
    assert fit_area(*size, size[0] * size[1]) == size
    assert fit_area(*size, 10 * size[0] * size[1]) == size  # never upscaled


def test_symmetric_under_transpose() -> None:
    for w in range(16, 400, 37):
        for h in range(16, 400, 41):
            rw, rh = fit_area(w, h, 7168)
            assert fit_area(h, w, 7168) == (rh, rw)


def test_other_cell_sizes_and_errors() -> None:
    w, h = fit_area(1280, 720, AREA_1_3B, cell=8)
    assert w % 8 == 0 and h % 8 == 0 and w * h <= AREA_1_3B
    with pytest.raises(ValueError):
        fit_area(8, 720, AREA_1_3B)
    with pytest.raises(ValueError):
        fit_area(1280, 720, 100)
