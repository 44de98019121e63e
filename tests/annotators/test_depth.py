"""Depth Anything V2 annotator on a tiny randomly initialised model of the same architecture,
saved offline into tmp_path the way a Hugging Face snapshot is laid out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tests.support.tiny_depth import save_tiny_depth
from vace_server.annotators.depth import load_depth_annotator, normalise_depth
from vace_server.annotators.errors import AnnotatorLoadError


@pytest.fixture(scope="module")
def tiny_depth_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_depth(tmp_path_factory.mktemp("depth"))


def _frames(n: int, size: tuple[int, int]) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        for _ in range(n)
    ]


def test_depth_frames_are_gray_full_range_and_same_size(tiny_depth_folder: Path) -> None:
    annotator = load_depth_annotator(tiny_depth_folder, "cpu", batch_size=2)
    assert annotator.name == "depth-anything-v2" and annotator.backend == "model"
    frames = [
        *_frames(3, (60, 40)),
        Image.new("RGB", (24, 32), (10, 20, 30)),
        *_frames(1, (60, 40)),
    ]
    out = annotator.annotate(frames)
    assert len(out) == len(frames)
    for frame, depth in zip(frames, out, strict=True):
        assert depth.mode == "RGB" and depth.size == frame.size
        a = np.asarray(depth)
        assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()
        assert a.min() == 0 and a.max() == 255  # min–max normalised per frame


def test_batching_does_not_change_results(tiny_depth_folder: Path) -> None:
    frames = _frames(3, (42, 28))
    one = load_depth_annotator(tiny_depth_folder, "cpu", batch_size=1).annotate(frames)
    three = load_depth_annotator(tiny_depth_folder, "cpu", batch_size=3).annotate(frames)
    for a, b in zip(one, three, strict=True):
        assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() <= 1


def test_normalise_depth() -> None:
    ramp = np.tile(np.linspace(2.0, 7.0, 11), (3, 1))
    out = normalise_depth(ramp)
    assert out.shape == (3, 11, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255 and out[0, 5, 0] == 127  # truncated
    assert not normalise_depth(np.full((4, 4), 3.0)).any()


def test_missing_folder_names_the_expected_snapshot(tmp_path: Path) -> None:
    with pytest.raises(AnnotatorLoadError, match="does not exist") as info:
        load_depth_annotator(tmp_path / "nope", "cpu")
    assert "Depth-Anything-V2-Large-hf" in str(info.value)
    assert "config.json" in str(info.value)


def test_incomplete_folder_lists_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "depth_anything"}')
    with pytest.raises(AnnotatorLoadError) as info:
        load_depth_annotator(tmp_path, "cpu")
    message = str(info.value)
    assert "preprocessor_config.json" in message and "model.safetensors" in message
    assert "incomplete" in message


def test_broken_checkpoint_is_a_load_error(tmp_path: Path, tiny_depth_folder: Path) -> None:
    for name in ("config.json", "preprocessor_config.json"):
        (tmp_path / name).write_bytes((tiny_depth_folder / name).read_bytes())
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(AnnotatorLoadError, match="cannot load the depth model"):
        load_depth_annotator(tmp_path, "cpu")


def test_the_network_sees_bgr_as_in_vace(tiny_depth_folder: Path) -> None:
    # VACE passes its RGB frame to Depth Anything's infer_image, which converts BGR -> RGB, so
    # the network gets the channels reversed. A frame and its R/B-swapped twin must therefore
    # give each other's renderings.
    annotator = load_depth_annotator(tiny_depth_folder, "cpu", batch_size=1)
    (frame,) = _frames(1, (42, 28))
    swapped = Image.fromarray(np.asarray(frame)[..., ::-1].copy())
    out, twin = annotator.annotate([frame, swapped])
    inputs = annotator.processor(images=[swapped], return_tensors="pt")
    with torch.inference_mode():
        predicted = annotator.model(pixel_values=inputs["pixel_values"]).predicted_depth
    resized = F.interpolate(predicted[:, None], (28, 42), mode="bilinear", align_corners=True)
    np.testing.assert_array_equal(np.asarray(out), normalise_depth(resized[0, 0].numpy()))
    assert not np.array_equal(np.asarray(out), np.asarray(twin))
