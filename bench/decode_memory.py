"""Peak memory of preparing one input video, by resolution (issue: bounded decode memory).

    PYTHONPATH=$PWD .venv/bin/python -m bench.decode_memory [--inputs DIR]

Generates two 5 s, 30 fps H.264 MP4s with the same content (a square moving over a flat
background, so they are small files): 3840x2160 and 854x480. Each is then prepared in a fresh
Python process the way `video_repainting` prepares its input for the 1.3B model: the first 5 s
decoded, 81 frames picked for 16 fps, each cover-resized to the generation size (within the
832x480 area). The child reports its peak RSS (`ru_maxrss`) right before decoding and after
the frames are ready; the difference is what the decode cost.

Works against the current decoder (`video.open_video`, frames read one at a time) and against
the earlier one (`video.decode_video`, every frame kept at full size), so the same file can
measure a checkout from before the streaming decoder: run it with PYTHONPATH pointing at that
checkout. `--inputs DIR` keeps the generated MP4s there (reused when present)."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.stream import VideoStream

SIZES = {"4k": (3840, 2160), "480p": (854, 480)}
FPS, SECONDS = 30, 5
AREA, NUM_FRAMES, MODEL_FPS = 832 * 480, 81, 16


def _write_input(path: Path, size: tuple[int, int]) -> None:
    """5 s at 30 fps, encoded frame by frame (never more than one raw frame in memory)."""
    width, height = size
    width -= width % 2
    side = height // 4
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        base = np.full((height, width, 3), 40, np.uint8)
        for k in range(FPS * SECONDS):
            frame = base.copy()
            x = k * (width - side) // (FPS * SECONDS)
            frame[height // 2 - side // 2 : height // 2 + side // 2, x : x + side] = 220
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _child(path: Path) -> None:
    """Prepares one input as video_repainting does; prints a JSON line."""
    from vace_server.errors import InputField
    from vace_server.functions import common
    from vace_server.media import video
    from vace_server.model_inputs import ModelProfile

    profile = ModelProfile(generation_area=AREA, num_frames=NUM_FRAMES, fps=MODEL_FPS)
    data = path.read_bytes()
    before = _peak_mb()
    start = time.perf_counter()
    if hasattr(video, "open_video"):  # streaming decoder
        clip = video.open_video(data, InputField.VIDEO, max_seconds=5)
        size = common.generation_size(*common.within_720p(clip.width, clip.height), profile)
        indices = common.sample_indices(clip.frame_count, clip.fps, NUM_FRAMES, MODEL_FPS)
        frames = clip.read(indices, lambda f: common.cover(f, size))
    else:  # the decoder before it: every frame at full size, then sampled and resized
        # (an older checkout's API, so untyped here: this tree no longer has it)
        legacy_video: Any = video
        legacy_common: Any = common
        old = legacy_video.decode_video(data, InputField.VIDEO, max_seconds=5)
        size = common.generation_size(*common.within_720p(old.width, old.height), profile)
        _, picked = legacy_common.sample_frames(old, NUM_FRAMES, MODEL_FPS)
        frames = [common.cover(f, size) for f in picked]
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "before_mb": round(before, 1),
                "peak_mb": round(_peak_mb(), 1),
                "frames": len(frames),
                "size": list(frames[0].size),
                "seconds": round(seconds, 2),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, help="keep the generated MP4s here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.inputs or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{'input':8s} {'file MB':>8s} {'RSS before':>11s} {'peak RSS':>9s} {'cost':>8s}")
        for name, size in SIZES.items():
            path = folder / f"{name}-{FPS}fps-{SECONDS}s.mp4"
            if not path.exists():
                _write_input(path, size)
            out = subprocess.run(
                [sys.executable, "-m", "bench.decode_memory", "--child", str(path)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"{name:8s} {path.stat().st_size / 1e6:8.2f} {r['before_mb']:8.0f} MB "
                f"{r['peak_mb']:6.0f} MB {r['peak_mb'] - r['before_mb']:5.0f} MB"
                f"   ({r['frames']} frames of {r['size'][0]}x{r['size'][1]}, {r['seconds']} s)"
            )


if __name__ == "__main__":
    main()
