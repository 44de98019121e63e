"""The demo's sample media: drawn deterministically, small, and accepted by the server's own
media checks (the same loaders a download goes through)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from vace_server.demo.samples import CLIP_FRAMES, CLIP_SIZE, FPS, SAMPLES, main, write_samples
from vace_server.errors import InputField
from vace_server.media.images import load_image, load_mask_image
from vace_server.media.video import open_video

COMMITTED = Path(__file__).resolve().parents[2] / "samples"


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_two_drawings_are_byte_for_byte_equal(tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in write_samples(tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in write_samples(tmp_path / "b")}
    assert first == second
    assert sorted(first) == sorted(SAMPLES)


def test_the_committed_samples_are_the_script_s(tmp_path: Path) -> None:
    """PNGs byte for byte; videos by their decoded frames (another libx264 build may write
    other bytes for the same pictures, a few levels apart after decoding)."""
    fresh = tmp_path / "fresh"
    write_samples(fresh)
    for name in SAMPLES:
        committed, drawn = COMMITTED / name, fresh / name
        if name.endswith(".png"):
            assert committed.read_bytes() == drawn.read_bytes(), name
            continue
        old, new = _frames(committed), _frames(drawn)
        assert len(old) == len(new), name
        diff = max(
            float(np.abs(a.astype(int) - b.astype(int)).mean())
            for a, b in zip(old, new, strict=True)
        )
        assert diff < 2.0, name


def test_the_samples_are_small() -> None:
    sizes = {name: (COMMITTED / name).stat().st_size for name in SAMPLES}
    assert sum(sizes.values()) < 300 * 1024, sizes


@pytest.mark.parametrize("name", ["subject.png", "scene.png"])
def test_the_images_pass_the_image_rules(name: str) -> None:
    image = load_image((COMMITTED / name).read_bytes(), InputField.REFERENCES)
    assert all(360 <= side <= 2000 for side in image.size)


def test_the_mask_matches_the_clip() -> None:
    mask = load_mask_image((COMMITTED / "mask.png").read_bytes(), InputField.MASK_IMAGE)
    assert mask.size == (CLIP_SIZE, CLIP_SIZE)
    values = np.asarray(mask.convert("L"))
    assert set(np.unique(values)) == {0, 255}
    # white exactly where the clip's first frame has its square (the bright yellow)
    first = _frames(COMMITTED / "clip.mp4")[0]
    square = first[..., 0] > 150
    assert (square == (values > 127)).mean() > 0.97


@pytest.mark.parametrize(
    ("name", "frames"), [("clip.mp4", CLIP_FRAMES), ("short-clip.mp4", 8), ("mask-video.mp4", 17)]
)
def test_the_videos_pass_the_video_rules(name: str, frames: int) -> None:
    clip = open_video((COMMITTED / name).read_bytes(), InputField.VIDEO, max_seconds=5.0)
    assert (clip.fps, clip.width, clip.height, clip.frame_count) == (
        FPS, CLIP_SIZE, CLIP_SIZE, frames,
    )  # fmt: skip


def test_the_command_writes_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(SAMPLES)
    assert "clip.mp4" in capsys.readouterr().out
