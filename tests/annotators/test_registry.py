from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from tests.support.tiny_sam2 import save_tiny_sam2
from vace_server.annotators.errors import AnnotatorLoadError
from vace_server.annotators.registry import ClassicalSegmenter, load_annotators, resolve_device
from vace_server.annotators.scribble import ClassicalScribble
from vace_server.annotators.tracking import FlowTracker
from vace_server.settings import Settings


@pytest.fixture(scope="module")
def sam2_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("annotators")
    (root / "sam2").mkdir()
    save_tiny_sam2(root / "sam2")
    return root


def _settings(**values: object) -> Settings:
    """Every annotator field explicit, so VACE_* variables in the environment don't leak in."""
    fields: dict[str, object] = {
        "device": "cpu",
        "annotator_dir": None,
        "segmentation_backend": "auto",
        "tracking_backend": "auto",
        "scribble_style": "canny",
    }
    return Settings(**{**fields, **values})  # type: ignore[arg-type]


class _FakeModelAnnotator:
    backend = "model"

    def __init__(self, name: str) -> None:
        self.name = name


class _FakePose(_FakeModelAnnotator):
    """Like DWPoseAnnotator: `variant()` gives the other control without loading again."""

    def variant(self, *, with_face: bool) -> _FakePose:
        return _FakePose("fake-pose-face" if with_face else "fake-pose")

    def annotate(self, frames: Sequence[Image.Image]) -> list[Image.Image]:
        return list(frames)


def test_without_annotator_dir_everything_is_classical() -> None:
    annotators = load_annotators(_settings(annotator_dir=None))
    assert isinstance(annotators.segmenter, ClassicalSegmenter)
    assert isinstance(annotators.tracker, FlowTracker)
    assert isinstance(annotators.scribble, ClassicalScribble)
    assert annotators.scribble.name == "canny-scribble"
    assert annotators.depth is None and annotators.pose_body is None
    assert annotators.pose_body_face is None
    assert "Depth Anything V2" in annotators.notes["depth"]
    assert "<annotator_dir>/depth" in annotators.notes["depth"]
    assert "dw-ll_ucoco_384.onnx" in annotators.notes["posebody"]
    assert annotators.notes["posebodyface"] == annotators.notes["posebody"]
    described = annotators.describe()
    assert set(described) == {
        "segmentation",
        "tracking",
        "scribble",
        "depth",
        "posebody",
        "posebodyface",
    }
    assert described["segmentation"] == {
        "available": "true",
        "name": "border-grabcut-cutout",
        "backend": "classical",
    }
    assert described["tracking"]["name"] == "dis-flow-tracker"
    assert described["depth"] == {"available": "false", "reason": annotators.notes["depth"]}


def test_missing_reasons_name_the_folder(tmp_path: Path) -> None:
    annotators = load_annotators(_settings(annotator_dir=tmp_path, scribble_style="xdog"))
    assert str(tmp_path / "depth") in annotators.notes["depth"]
    assert str(tmp_path / "pose") in annotators.notes["posebody"]
    assert annotators.scribble.name == "xdog-scribble"
    assert isinstance(annotators.tracker, FlowTracker)  # auto without sam2/


def test_auto_picks_sam2_when_its_folder_exists(sam2_root: Path) -> None:
    annotators = load_annotators(_settings(annotator_dir=sam2_root))
    assert (annotators.segmenter.name, annotators.segmenter.backend) == ("sam2-image", "model")
    assert (annotators.tracker.name, annotators.tracker.backend) == ("sam2-video", "model")
    assert annotators.describe()["tracking"]["backend"] == "model"


def test_classical_backends_ignore_sam2(sam2_root: Path) -> None:
    annotators = load_annotators(
        _settings(
            annotator_dir=sam2_root, segmentation_backend="classical", tracking_backend="classical"
        )
    )
    assert isinstance(annotators.segmenter, ClassicalSegmenter)
    assert isinstance(annotators.tracker, FlowTracker)


def test_model_backend_without_sam2_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(AnnotatorLoadError, match=r"tracking_backend=model.*sam2"):
        load_annotators(_settings(annotator_dir=tmp_path, tracking_backend="model"))
    with pytest.raises(AnnotatorLoadError, match="annotator_dir is unset"):
        load_annotators(_settings(annotator_dir=None, segmentation_backend="model"))


def test_broken_sam2_folder_raises_instead_of_falling_back(tmp_path: Path) -> None:
    (tmp_path / "sam2").mkdir()
    (tmp_path / "sam2" / "config.json").write_text("{}")
    with pytest.raises(AnnotatorLoadError, match="sam2"):
        load_annotators(_settings(annotator_dir=tmp_path))


def test_bad_names_are_refused_by_the_settings() -> None:
    with pytest.raises(ValidationError, match="segmentation_backend"):
        _settings(segmentation_backend="sam3")
    with pytest.raises(ValidationError, match="scribble_style"):
        _settings(scribble_style="hed")


@pytest.mark.parametrize("with_variant", [True, False])
def test_depth_and_pose_folders_are_loaded_with_the_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_variant: bool
) -> None:
    calls: list[tuple[str, Path, str, bool | None]] = []

    def load_depth(folder: Path, device: str) -> _FakeModelAnnotator:
        calls.append(("depth", folder, device, None))
        return _FakeModelAnnotator("fake-depth")

    def load_pose(folder: Path, device: str, *, with_face: bool) -> _FakeModelAnnotator:
        calls.append(("pose", folder, device, with_face))
        kind = _FakePose if with_variant else _FakeModelAnnotator
        return kind("fake-pose-face" if with_face else "fake-pose")

    depth = types.ModuleType("vace_server.annotators.depth")
    depth.load_depth_annotator = load_depth  # type: ignore[attr-defined]
    pose = types.ModuleType("vace_server.annotators.pose")
    pose.load_pose_annotator = load_pose  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vace_server.annotators.depth", depth)
    monkeypatch.setitem(sys.modules, "vace_server.annotators.pose", pose)
    (tmp_path / "depth").mkdir()
    (tmp_path / "pose").mkdir()
    annotators = load_annotators(_settings(annotator_dir=tmp_path))
    assert annotators.depth is not None and annotators.depth.name == "fake-depth"
    assert annotators.pose_body is not None and annotators.pose_body.name == "fake-pose"
    assert annotators.pose_body_face is not None
    assert annotators.pose_body_face.name == "fake-pose-face"
    assert annotators.notes == {}
    expected = [
        ("depth", tmp_path / "depth", "cpu", None),
        ("pose", tmp_path / "pose", "cpu", False),
    ]
    if not with_variant:
        expected.append(("pose", tmp_path / "pose", "cpu", True))
    assert calls == expected


def test_a_depth_folder_that_fails_to_load_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def load_depth(folder: Path, device: str) -> _FakeModelAnnotator:
        raise AnnotatorLoadError(f"{folder} holds no Depth Anything V2 snapshot")

    depth = types.ModuleType("vace_server.annotators.depth")
    depth.load_depth_annotator = load_depth  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vace_server.annotators.depth", depth)
    (tmp_path / "depth").mkdir()
    with pytest.raises(AnnotatorLoadError, match="Depth Anything"):
        load_annotators(_settings(annotator_dir=tmp_path))


def test_resolve_device() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == expected
    assert resolve_device("cuda:1") == "cuda:1"
