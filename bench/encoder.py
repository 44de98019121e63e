"""The output encoder's speed presets side by side: what each libx264 preset costs in worker CPU
per delivered video and what it saves in file size, at the worker's crf, on content with
natural-image statistics.

    .venv/bin/python -m bench.encoder [--quick]

The content is generated, not the tiny model's output (its frames are noise and repeats, which
flatter the fastest presets): a 1/f ("pink") noise texture, as natural images' spectra fall
off, slowly zoomed and panned, with a disc crossing it; 81 frames at 16 fps retimed to 150 at
30 fps the way the worker delivers them (`media.output.render_video`), at 1280x720. Each preset
encodes the same frames through `media.encode.encode_mp4`, the presets alternated over the
rounds so a load change falls on all of them. Reported per preset: the median encode time,
the file size, the luma PSNR of the decoded video against its input (every frame), and time
and size as ratios to the default preset (`output_x264_preset`)."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from vace_server.media.encode import encode_mp4
from vace_server.media.output import delivered_order
from vace_server.settings.groups import EngineSettings

PRESETS = ("ultrafast", "superfast", "veryfast", "faster")
CRF: int = EngineSettings.model_fields["output_crf"].default
DEFAULT: str = EngineSettings.model_fields["output_x264_preset"].default


@dataclass(frozen=True)
class Clip:
    frames: np.ndarray  # uint8 (U, H, W, 3): the distinct frames
    order: np.ndarray  # int64 (N,): the frame shown at each output position
    fps: int


@dataclass(frozen=True)
class PresetFigures:
    preset: str
    seconds: float
    size_bytes: int
    psnr_db: float


def natural_clip(width: int, height: int, frames: int, *, seed: int = 0) -> Clip:
    """`frames` generated frames (16 fps) retimed to 30 fps as the worker delivers them."""
    rng = np.random.default_rng(seed)
    side = 2 * max(width, height)
    fy = np.fft.fftfreq(side)[:, None]
    fx = np.fft.fftfreq(side)[None, :]
    falloff = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / side)

    def pink() -> np.ndarray:
        plane = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((side, side))) * falloff))
        return (plane - plane.mean()) / plane.std()

    # Natural colour is mostly shared luminance: one plane for all channels, a weaker tint each.
    luma = pink()
    channels = [(luma + 0.3 * pink()) / 5 + 0.5 for _ in range(3)]
    texture = np.clip(np.stack(channels, axis=-1) * 255, 0, 255).astype(np.uint8)

    distinct = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        progress = t / max(1, frames - 1)
        scale = 1.0 + 0.25 * progress  # slow zoom in
        centre = (side / 2 + 0.1 * side * progress, side / 2 + 0.05 * side * progress)
        warp = np.asarray(cv2.getRotationMatrix2D(centre, 0.0, scale), np.float64)
        warp[:, 2] += np.array([width / 2 - centre[0], height / 2 - centre[1]])
        frame = cv2.warpAffine(texture, warp, (width, height), flags=cv2.INTER_LINEAR)
        disc = (int(width * (0.1 + 0.8 * progress)), int(height * 0.5))
        cv2.circle(frame, disc, max(4, height // 8), (230, 60, 40), -1, lineType=cv2.LINE_AA)
        distinct[t] = frame
    # 81 frames at 16 fps span 5 s: 150 delivered at 30 fps
    picked, order = delivered_order(frames, (frames - 1) / 16, fps=30)
    return Clip(distinct[picked], order, fps=30)


def psnr_y(path: Path, expected: np.ndarray) -> float:
    """PSNR (dB) of the decoded luma against `expected` uint8 (N, H, W, 3) RGB's BT.709
    limited-range luma (what `encode_mp4` converts to), over all frames. Luma, because the
    4:2:0 chroma subsampling loses the same for every preset."""
    weights = np.array([0.2126, 0.7152, 0.0722]) * 219 / 255
    total, count = 0.0, 0
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            luma = frame.to_ndarray()[: frame.height].astype(np.float64)  # yuv420p: Y rows first
            reference = 16 + expected[index].astype(np.float64) @ weights
            total += float(np.mean((luma - reference) ** 2))
            count += 1
    if count != len(expected):
        raise RuntimeError(f"{path} decoded {count} frames, expected {len(expected)}")
    mse = total / count
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def measure(clip: Clip, tmp: Path, *, rounds: int) -> list[PresetFigures]:
    times: dict[str, list[float]] = {p: [] for p in PRESETS}
    sizes: dict[str, int] = {}
    for round_index in range(rounds + 1):  # round 0 warms up, uncounted
        for preset in PRESETS:
            out = tmp / f"{preset}.mp4"
            started = time.perf_counter()
            encode_mp4(clip.frames, clip.fps, out, order=clip.order, preset=preset, crf=CRF)
            if round_index:
                times[preset].append(time.perf_counter() - started)
            sizes[preset] = out.stat().st_size
    expected = clip.frames[clip.order]
    return [
        PresetFigures(p, statistics.median(times[p]), sizes[p], psnr_y(tmp / f"{p}.mp4", expected))
        for p in PRESETS
    ]


def markdown_rows(*, quick: bool) -> str:
    width, height, frames, rounds = (64, 64, 9, 1) if quick else (1280, 720, 81, 2)
    clip = natural_clip(width, height, frames)
    with tempfile.TemporaryDirectory(prefix="vace-bench-encoder-") as tmp:
        figures = measure(clip, Path(tmp), rounds=rounds)
    base = next(f for f in figures if f.preset == DEFAULT)
    lines = [
        f"{len(clip.order)} frames at {width}x{height}, {clip.fps} fps, crf {CRF}; median of "
        f"{rounds} round(s), the presets alternated; ratios against the default "
        f"(`VACE_OUTPUT_X264_PRESET={DEFAULT}`).",
        "",
        "| preset | encode (ms) | time / default | size (KB) | size / default | PSNR-Y (dB) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in figures:
        name = f"{f.preset} (default)" if f.preset == DEFAULT else f.preset
        lines.append(
            f"| {name} | {f.seconds * 1000:,.0f} | {f.seconds / base.seconds:.2f}x "
            f"| {f.size_bytes / 1000:,.0f} | {f.size_bytes / base.size_bytes:.2f}x "
            f"| {f.psnr_db:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64x64, one round (smoke test)")
    args = parser.parse_args(argv)
    print(markdown_rows(quick=args.quick))


if __name__ == "__main__":
    main()
