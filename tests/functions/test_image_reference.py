from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.fake_annotators import fake_annotators
from tests.support.wire import raises_wire
from vace_server import errors
from vace_server.api.wire_names import wire_name
from vace_server.errors import InputField
from vace_server.functions import build_inputs, image_reference
from vace_server.media.clip import VideoClip
from vace_server.model_inputs import ModelProfile, fit_area
from vace_server.tasks.spec import Reference, ReferenceRole, TaskSpec, VaceFunction

OBJ, BG = ReferenceRole.SUBJECT, ReferenceRole.SCENE
PROFILE = ModelProfile(generation_area=112 * 64, num_frames=81, fps=16)
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


class ImagesOnly:
    """The MediaSource parts image_reference must never use: it fetches images only."""

    def fetch_mask_image(self, url: str, field: str) -> Image.Image:
        raise AssertionError(f"image_reference fetched a mask: {field}")

    def fetch_video(self, url: str, field: str, *, max_seconds: float) -> VideoClip:
        raise AssertionError(f"image_reference fetched a video: {field}")


class FakeMedia(ImagesOnly):
    def __init__(self, images: dict[str, Image.Image]) -> None:
        self.images = images
        self.calls: list[tuple[str, str]] = []

    def fetch_image(self, url: str, field: InputField) -> Image.Image:
        self.calls.append((url, wire_name(field)))
        return self.images[url].copy()


class FakeCutOut:
    """Crops a 2-px frame off and whitens pure-black pixels: visibly 'cut out', not resized."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def __call__(self, image: Image.Image) -> Image.Image:
        self.seen.append(image.size)
        a = np.array(image.convert("RGB"))[2:-2, 2:-2]
        a[(a == 0).all(axis=2)] = 255
        return Image.fromarray(a)


def solid(color: tuple[int, int, int], size: tuple[int, int] = (40, 60)) -> Image.Image:
    return Image.new("RGB", size, color)


def spec(*refs: tuple[str, ReferenceRole], size: tuple[int, int] | None = (1280, 720)) -> TaskSpec:
    return TaskSpec(
        function=VaceFunction.IMAGE_REFERENCE,
        prompt="a cat dance",
        seed=1,
        size=size,
        references=tuple(Reference(url=u, role=r) for u, r in refs),
    )


def banded(size: tuple[int, int], horizontal: bool, band: int) -> Image.Image:
    """Green image with red/blue bands of `band` px on the two ends of its long axis."""
    a = np.zeros((size[1], size[0], 3), np.uint8)
    a[:] = GREEN
    if horizontal:
        a[:, :band], a[:, -band:] = RED, BLUE
    else:
        a[:band], a[-band:] = RED, BLUE
    return Image.fromarray(a)


def colour_of(image: Image.Image) -> tuple[int, ...]:
    return tuple(
        int(c) for c in np.asarray(image.convert("RGB"))[image.height // 2, image.width // 2]
    )


# ------------------------------------------------------------------ sizes, frames, timing
@pytest.mark.parametrize("size", [(1280, 720), (720, 1280), (960, 960), (832, 1088), (1088, 832)])
def test_sizes_frames_and_duration(size: tuple[int, int]) -> None:
    media = FakeMedia({"o": solid(RED)})
    inputs = image_reference.build(spec(("o", OBJ), size=size), media, PROFILE, FakeCutOut())
    assert (inputs.width, inputs.height) == fit_area(*size, PROFILE.generation_area)
    assert inputs.width % 16 == 0 and inputs.height % 16 == 0
    assert inputs.width * inputs.height <= PROFILE.generation_area
    assert (inputs.width > inputs.height) == (size[0] > size[1])
    assert inputs.num_frames == 81
    assert inputs.output_size == size
    assert inputs.output_seconds == 5.0
    assert inputs.video is None and inputs.mask is None
    assert inputs.conditioning_scale == 1.0


def test_1_3b_area_gives_the_documented_size() -> None:
    profile = ModelProfile(generation_area=832 * 480, num_frames=17, fps=16)
    inputs = image_reference.build(
        spec(("o", OBJ)), FakeMedia({"o": solid(RED)}), profile, FakeCutOut()
    )
    assert (inputs.width, inputs.height, inputs.num_frames) == (832, 480, 17)
    assert inputs.output_seconds == 1.0


def test_default_size_is_1280x720() -> None:
    inputs = image_reference.build(
        spec(("o", OBJ), size=None), FakeMedia({"o": solid(RED)}), PROFILE, FakeCutOut()
    )
    assert inputs.output_size == (1280, 720)
    assert (inputs.width, inputs.height) == fit_area(1280, 720, PROFILE.generation_area)


# ------------------------------------------------------------------ roles
def test_subject_is_cut_out_and_not_resized() -> None:
    media = FakeMedia({"o": solid((0, 0, 0), (50, 90))})
    cut = FakeCutOut()
    inputs = image_reference.build(spec(("o", OBJ)), media, PROFILE, cut)
    assert cut.seen == [(50, 90)]
    assert inputs.reference_images is not None
    (ref,) = inputs.reference_images
    assert ref.size == (46, 86) and ref.mode == "RGB"
    assert np.all(np.asarray(ref) == 255)  # the fake cut-out whitened it
    assert media.calls == [("o", "input.ref_images_url")]


def test_scene_is_kept_whole_not_cropped_or_resized() -> None:
    source = banded((320, 100), True, 60)
    media = FakeMedia({"b": source})
    cut = FakeCutOut()
    inputs = image_reference.build(spec(("b", BG)), media, PROFILE, cut)
    assert cut.seen == []  # scenes are never cut out
    assert inputs.reference_images is not None
    (scene,) = inputs.reference_images
    assert scene.mode == "RGB" and np.array_equal(np.asarray(scene), np.asarray(source))


@pytest.mark.parametrize(
    "order",
    [
        [("bg", BG), ("o1", OBJ), ("o2", OBJ)],
        [("o1", OBJ), ("bg", BG), ("o2", OBJ)],
        [("o1", OBJ), ("o2", OBJ), ("bg", BG)],
    ],
)
def test_client_order_is_kept(order: list[tuple[str, ReferenceRole]]) -> None:
    media = FakeMedia({"bg": solid(GREEN, (200, 100)), "o1": solid(RED), "o2": solid(BLUE)})
    inputs = image_reference.build(spec(*order), media, PROFILE, FakeCutOut())
    assert inputs.reference_images is not None
    colours = {"bg": GREEN, "o1": RED, "o2": BLUE}
    assert [colour_of(im) for im in inputs.reference_images] == [colours[u] for u, _ in order]
    assert [url for url, _ in media.calls] == [u for u, _ in order]  # fetched in client order
    assert {field for _, field in media.calls} == {"input.ref_images_url"}


# ------------------------------------------------------------------ what reaches the pipeline
@pytest.fixture(scope="module")
def tiny_pipe():
    from vace_server.engine.loader import load_model
    from vace_server.settings import Settings

    return load_model(Settings(model="tiny", num_frames=17, generation_area=64 * 32)).pipe


def _conditions(pipe, inputs) -> tuple[object, object, list]:
    import torch

    from vace_server.engine.runner import pipeline_references

    video, mask, refs = pipe.preprocess_conditions(
        None, None, pipeline_references(inputs), 1, inputs.height, inputs.width,
        inputs.num_frames, torch.float32, torch.device("cpu"),
    )  # fmt: skip
    return video, mask, refs[0]


@pytest.mark.usefixtures("one_torch_thread")
def test_scene_is_letterboxed_on_white_at_the_generation_size(tiny_pipe) -> None:
    # VACE (prepare_source) and diffusers both fit a reference inside the generation size and
    # centre it on white. A 300x60 (5:1) scene in a 64x32 (2:1) frame: 64x12, bars of 10 px.
    media = FakeMedia({"b": banded((300, 60), True, 30)})
    profile = ModelProfile(generation_area=64 * 32, num_frames=17, fps=16)
    inputs = image_reference.build(spec(("b", BG), size=(64, 32)), media, profile, FakeCutOut())
    assert (inputs.width, inputs.height) == (64, 32)
    _, _, (canvas,) = _conditions(tiny_pipe, inputs)
    c = canvas.numpy()  # (3, 32, 64) in [-1, 1]
    assert c.shape == (3, 32, 64)
    assert (c[:, :10] == 1.0).all() and (c[:, 22:] == 1.0).all()  # white bars top and bottom
    rgb = (c[:, 10:22] + 1) * 127.5
    assert np.abs(rgb[:, :, 20:44] - np.array(GREEN)[:, None, None]).max() < 3  # the scene
    assert rgb[0, 6, 2] > 200 and rgb[2, 6, 61] > 200  # its red and blue ends are not cropped


@pytest.mark.usefixtures("one_torch_thread")
def test_first_client_reference_is_the_first_latent_frame(tiny_pipe) -> None:
    # VACE concatenates [ref 1, ref 2, ..., video] latents; diffusers prepends each reference
    # it is given, so the runner reverses the list. Check the latent layout diffusers builds.
    import torch

    images = {"o1": solid(RED), "bg": banded((300, 60), True, 30), "o2": solid(BLUE)}
    order = [("o1", OBJ), ("bg", BG), ("o2", OBJ)]
    profile = ModelProfile(generation_area=64 * 32, num_frames=17, fps=16)
    inputs = image_reference.build(spec(*order, size=(64, 32)), FakeMedia(images), profile,
                                   FakeCutOut())  # fmt: skip
    video, mask, refs = _conditions(tiny_pipe, inputs)
    with torch.inference_mode():
        latents = tiny_pipe.prepare_video_latents(video, mask, [refs], None, torch.device("cpu"))
        assert latents.shape[2] == 3 + (17 - 1) // 4 + 1
        for i, (url, role) in enumerate(order):
            alone = image_reference.build(spec((url, role), size=(64, 32)), FakeMedia(images),
                                          profile, FakeCutOut())  # fmt: skip
            v, m, r = _conditions(tiny_pipe, alone)
            single = tiny_pipe.prepare_video_latents(v, m, [r], None, torch.device("cpu"))
            torch.testing.assert_close(latents[:, :, i], single[:, :, 0])


def test_refuses_what_the_api_should_have_refused() -> None:
    media = FakeMedia({"a": solid(RED), "b": solid(GREEN)})
    with raises_wire(errors.InvalidParameter, match="ref_images_url"):
        image_reference.build(spec(), media, PROFILE, FakeCutOut())
    with pytest.raises(errors.InvalidParameter, match="bg"):
        image_reference.build(spec(("a", BG), ("b", BG)), media, PROFILE, FakeCutOut())
    assert media.calls == []


def test_media_errors_propagate() -> None:
    class Broken(ImagesOnly):
        def fetch_image(self, url: str, field: InputField) -> Image.Image:
            raise errors.InvalidURL(f"bad {field.mention}")

    with raises_wire(errors.InvalidURL, match=r"input\.ref_images_url"):
        image_reference.build(spec(("a", OBJ)), Broken(), PROFILE, FakeCutOut())


# ------------------------------------------------------------------ dispatch
def test_build_inputs_dispatches_image_reference() -> None:
    media = FakeMedia({"o": solid(RED)})
    inputs = build_inputs(
        spec(("o", OBJ)), media, PROFILE, annotators=fake_annotators(cut=FakeCutOut())
    )
    assert inputs.reference_images is not None and len(inputs.reference_images) == 1


def test_functions_package_does_not_import_torch() -> None:
    code = (
        "import sys, vace_server.functions, vace_server.functions.image_reference, "
        "vace_server.model_inputs, vace_server.media.clip, vace_server.tasks.spec; "
        "heavy = {'torch', 'diffusers', 'transformers'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=60)


# ------------------------------------------------------------------ end to end (tiny model)
@pytest.mark.usefixtures("one_torch_thread")
def test_end_to_end_through_the_tiny_pipeline() -> None:
    from vace_server.engine.loader import load_model
    from vace_server.engine.runner import generate
    from vace_server.settings import Settings

    model = load_model(Settings(model="tiny", num_frames=17, generation_area=64 * 32))
    media = FakeMedia(
        {"bg": banded((300, 120), True, 40), "o1": solid((200, 30, 30)), "o2": solid((0, 0, 0))}
    )
    inputs = build_inputs(
        spec(("o1", OBJ), ("bg", BG), ("o2", OBJ)),
        media,
        model.profile,
        annotators=fake_annotators(cut=FakeCutOut()),
    )
    assert (inputs.width, inputs.height, inputs.num_frames) == (64, 32, 17)
    assert inputs.output_seconds == 1.0
    steps: list[tuple[int, int]] = []
    frames = generate(
        model, inputs, prompt="a cat dance", negative_prompt="negative", seed=5,
        on_step=lambda done, total: steps.append((done, total)),
    )  # fmt: skip
    assert frames.shape == (17, 32, 64, 3)
    assert frames.dtype == np.float32 and frames.min() >= 0.0 and frames.max() <= 1.0
    assert steps == [(1, 2), (2, 2)]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("source", [(300, 61), (37, 90), (64, 32)])
def test_reference_canvas_is_vaces_letterbox(tiny_pipe, source: tuple[int, int]) -> None:
    # VACE's prepare_source restated: to [-1, 1], bilinear (align_corners=False) to
    # int(side * min(H / h, W / w)), centred on a canvas of 1. Sizes not multiples of 8 would
    # be resized by diffusers before its own letterbox; what reaches the model must be VACE's
    # canvas up to 8-bit rounding.
    import torch

    image = noise_image(source, 4)
    profile = ModelProfile(generation_area=64 * 32, num_frames=17, fps=16)
    inputs = image_reference.build(spec(("b", BG), size=(64, 32)), FakeMedia({"b": image}),
                                   profile, FakeCutOut())  # fmt: skip
    _, _, (canvas,) = _conditions(tiny_pipe, inputs)
    pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 127.5 - 1
    h, w = source[1], source[0]
    scale = min(32 / h, 64 / w)
    nh, nw = int(h * scale), int(w * scale)
    resized = torch.nn.functional.interpolate(pixels[None], (nh, nw), mode="bilinear")[0]
    expected = torch.ones(3, 32, 64)
    top, left = (32 - nh) // 2, (64 - nw) // 2
    expected[:, top : top + nh, left : left + nw] = resized
    assert (canvas - expected).abs().max() <= 0.5 / 127.5 + 1e-6


def noise_image(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
