"""The streaming decoder: `open_video` knows the kept span before decoding, `Mp4Clip.read`
decodes only up to the last frame asked for, converts only those frames, and never holds more
than one full-size frame at a time."""

from __future__ import annotations

import io
import weakref
from fractions import Fraction

import av
import numpy as np
import pytest
from av.video.stream import VideoStream
from PIL import Image

from tests.functions.fakes import PROFILE
from tests.support.fake_annotators import fake_annotators
from tests.support.videos import SQUARE_LEVEL, moving_square_frames, mp4_bytes
from vace_server.errors import InputField, InvalidFile
from vace_server.functions import common, video_repainting
from vace_server.media.clip import VideoClip
from vace_server.media.video import open_video
from vace_server.tasks.spec import Control, TaskSpec, VaceFunction

FIELD = InputField.VIDEO


def _which_frame(image: Image.Image) -> int:
    """The frame index k whose square the image shows: `moving_square_frames` puts its left
    edge at 2k px (before it wraps)."""
    row = np.asarray(image.convert("L"), dtype=np.int16)[image.height // 2]
    return (int(np.nonzero(row > SQUARE_LEVEL - 40)[0].min()) + 1) // 2


def _encode(
    frames: list[np.ndarray], pts: list[int], time_base: Fraction, options: dict[str, str]
) -> bytes:
    buf = io.BytesIO()
    height, width = frames[0].shape[:2]
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(1) / time_base)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = time_base
        stream.options = dict(options)
        for k, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = pts[k], time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buf.getvalue()


@pytest.fixture(scope="module")
def square_mp4() -> bytes:
    return mp4_bytes(moving_square_frames(17), 16)


class _Recorder:
    """A frame preparation that records what it was given and checks that every full-size
    frame it saw earlier is gone by the next call (weak references)."""

    def __init__(self) -> None:
        self.seen: list[weakref.ref[Image.Image]] = []
        self.alive_at_call: list[int] = []

    def __call__(self, frame: Image.Image) -> Image.Image:
        self.alive_at_call.append(sum(ref() is not None for ref in self.seen))
        self.seen.append(weakref.ref(frame))
        return frame.resize((16, 16))


def test_only_the_asked_frames_are_converted_and_returned(square_mp4: bytes) -> None:
    clip = open_video(square_mp4, FIELD, max_seconds=5)
    full = clip.read(range(17), lambda frame: frame.copy())
    recorder = _Recorder()
    picked = clip.read([9, 0, 16, 9, 5], recorder)
    assert len(recorder.seen) == 4  # distinct frames, each prepared once
    assert all(p.size == (16, 16) for p in picked)
    assert picked[0] is picked[3]  # a repeated index shares its prepared frame
    for index, frame in zip([9, 0, 16, 9, 5], picked, strict=True):
        assert np.array_equal(np.asarray(frame), np.asarray(full[index].resize((16, 16))))
    assert [_which_frame(full[k]) for k in (0, 5, 9, 16)] == [0, 5, 9, 16]


def test_at_most_one_full_size_frame_is_alive(square_mp4: bytes) -> None:
    clip = open_video(square_mp4, FIELD, max_seconds=5)
    recorder = _Recorder()
    clip.read(range(17), recorder)
    assert recorder.alive_at_call == [0] * 17
    assert all(ref() is None for ref in recorder.seen)


def test_decoding_stops_after_the_last_frame_asked_for(square_mp4: bytes) -> None:
    # the index intact, the last quarter of the samples zeroed: the early frames decode, the
    # late ones do not, so a read that stops early succeeds
    mdat = square_mp4.index(b"mdat")
    end = mdat - 4 + int.from_bytes(square_mp4[mdat - 4 : mdat], "big")
    cut = end - (end - mdat) // 4
    data = square_mp4[:cut] + bytes(end - cut) + square_mp4[end:]
    clip = open_video(data, FIELD, max_seconds=5)
    assert clip.frame_count == 17  # the index promises 17
    (early,) = clip.read([1], lambda frame: frame)
    assert _which_frame(early) == 1
    with pytest.raises(InvalidFile) as info:
        clip.read([16], lambda frame: frame)
    assert info.value.code == "InvalidFile.Openerror"


def test_index_outside_the_span_is_a_programming_error(square_mp4: bytes) -> None:
    clip = open_video(square_mp4, FIELD, max_seconds=0.5)
    assert clip.frame_count == 9
    with pytest.raises(ValueError):
        clip.read([9], lambda frame: frame)


@pytest.mark.parametrize(
    ("count", "fps", "kept", "sampled"),
    [
        (150, 30, 150, 81),  # 5 s at 30 fps
        (180, 30, 151, 81),  # 6 s at 30 fps: cut at 5 s, the frame at 5 s kept
        (81, 16, 81, 81),  # Wan's own 81 frames at 16 fps
        (96, 16, 81, 81),  # 6 s at 16 fps
        (80, 16, 80, 81),  # exactly 5 s at 16 fps: no frame at 5 s, the last one held
    ],
)
def test_five_seconds_give_81_frames(count: int, fps: int, kept: int, sampled: int) -> None:
    data = mp4_bytes(moving_square_frames(count, size=(16, 16), square=4), fps)
    clip = open_video(data, FIELD, max_seconds=5)
    assert clip.frame_count == kept
    indices = common.sample_indices(clip.frame_count, clip.fps, 81, 16)
    assert len(indices) == sampled and indices[-1] == kept - 1
    assert len(clip.read(indices, lambda frame: frame)) == sampled


def test_extension_clips_keep_the_frame_at_3s() -> None:
    data = mp4_bytes(moving_square_frames(64, size=(16, 16), square=4), 16)
    clip = open_video(data, InputField.FIRST_CLIP, max_seconds=3)
    assert clip.frame_count == 49
    assert len(common.sample_indices(clip.frame_count, clip.fps, 81, 16, snap=False)) == 49


def test_variable_frame_rate_counts_by_time() -> None:
    # frames 1/100 s to 1/10 s apart (18 fps on average) over 5.72 s: the kept span ends at
    # 5 s whatever the spacing
    gaps = [1, 10, 3, 9, 2, 8, 4, 7] * 13
    pts = [sum(gaps[:k]) for k in range(len(gaps) + 1)]
    frames = moving_square_frames(len(pts), size=(256, 32), square=8)
    data = _encode(frames, pts, Fraction(1, 100), {"preset": "ultrafast"})
    inside = [k for k, p in enumerate(pts) if p <= 500]
    assert len(inside) < len(pts)
    clip = open_video(data, FIELD, max_seconds=5)
    assert clip.frame_count == len(inside)
    last = clip.read([len(inside) - 1], lambda frame: frame)[0]
    assert _which_frame(last) == inside[-1]


def test_b_frames_are_counted_and_read_in_presentation_order() -> None:
    frames = moving_square_frames(17)
    data = _encode(frames, list(range(17)), Fraction(1, 16), {"preset": "medium", "bf": "3"})
    with av.open(io.BytesIO(data), mode="r") as container:  # the file really reorders frames
        packets = [p for p in container.demux(video=0) if p.size]
        assert any(p.pts != p.dts for p in packets)
    clip = open_video(data, FIELD, max_seconds=5)
    assert clip.frame_count == 17
    decoded = clip.read(range(17), lambda frame: frame)
    assert [_which_frame(f) for f in decoded] == list(range(17))


def test_a_4k_input_goes_to_the_generation_size_through_a_function() -> None:
    array = np.full((2160, 3840, 3), 70, np.uint8)
    array[1000:1160, 1800:2040] = 220
    clip = open_video(mp4_bytes([array] * 5, 16), FIELD, max_seconds=5)
    assert (clip.width, clip.height, clip.frame_count) == (3840, 2160, 5)

    class Source:
        def fetch_video(self, url: str, field: InputField, *, max_seconds: float) -> VideoClip:
            return clip

    spec = TaskSpec(
        function=VaceFunction.VIDEO_REPAINTING,
        prompt="p",
        seed=1,
        video_url="v",
        control=Control.DEPTH,
    )
    inputs = video_repainting.build(spec, Source(), PROFILE, fake_annotators())  # type: ignore[arg-type]
    assert inputs.output_size == (1280, 720)  # the input's size, by the <= 720P rule
    assert (inputs.width, inputs.height) == (80, 48) and inputs.num_frames == 5
    assert inputs.video is not None and all(f.size == (80, 48) for f in inputs.video)


@pytest.mark.parametrize("options", [{"preset": "ultrafast"}, {"preset": "medium", "bf": "3"}])
def test_an_edit_list_that_hides_frames_is_honoured(options: dict[str, str]) -> None:
    # the edit list starts 3 frames into the samples: those decode (as references) but are
    # never shown, so they are neither counted nor returned
    data = bytearray(_encode(moving_square_frames(17), list(range(17)), Fraction(1, 16), options))
    elst = data.index(b"elst")
    media_time = int.from_bytes(data[elst + 16 : elst + 20], "big", signed=True)
    with av.open(io.BytesIO(bytes(data)), mode="r") as container:
        time_base = container.streams.video[0].time_base
        assert time_base is not None
        frame_ticks = round(1 / (16 * time_base))
    data[elst + 16 : elst + 20] = (media_time + 3 * frame_ticks).to_bytes(4, "big", signed=True)
    clip = open_video(bytes(data), FIELD, max_seconds=5)
    assert clip.frame_count == 14
    shown = clip.read(range(14), lambda frame: frame)
    assert [_which_frame(f) for f in shown] == list(range(3, 17))
