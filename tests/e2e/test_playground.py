"""The /playground page, driven in headless Debian Chromium through Playwright.

Each test starts a real server (tiny model) and a loopback media server, then works the page like
a user: key, function, media, submit, progress, result, recent tasks, uploads, cancel.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.images import png_bytes, subject_on_white
from tests.support.live_server import API_KEY, LiveServer
from tests.support.media_server import MediaServer

pw = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TASK_TIMEOUT_MS = 120_000


def _chromium() -> str | None:
    configured = os.environ.get("VACE_TEST_CHROMIUM", "/usr/bin/chromium")
    if Path(configured).is_file() and os.access(configured, os.X_OK):
        return configured
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        pytest.skip("Chromium not found at /usr/bin/chromium: run scripts/ensure-chromium.sh")
    with pw.sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def _open(page: Any, server: LiveServer, *, key: str = API_KEY) -> None:
    page.goto(f"{server.base_url}/playground")
    page.get_by_label("API key").fill(key)
    pw.expect(page.locator("#server-status")).to_contain_text("worker")


def _fill_image_reference(page: Any, image_url: str, prompt: str = "a red ball") -> None:
    page.get_by_label("Multi-image reference").check()
    page.locator("#prompt").fill(prompt)
    slot = page.get_by_role("group", name="Reference image 1")
    slot.get_by_label("URL", exact=True).check()
    page.get_by_label("Reference image 1 URL").fill(image_url)
    page.locator("#size").select_option("960*960")


def _submit(page: Any) -> dict[str, Any]:
    """Clicks Generate and returns the JSON body the page sent."""
    with page.expect_request(
        lambda r: r.method == "POST" and r.url.endswith("/video-synthesis")
    ) as sent:
        page.get_by_role("button", name="Generate video").click()
    request = sent.value
    body: dict[str, Any] = request.post_data_json
    body["_headers"] = request.headers
    return body


def _task_id(page: Any) -> str:
    pw.expect(page.locator("#task-id")).not_to_have_text("")
    task_id: str = page.locator("#task-id").inner_text()
    return task_id


def _recent_row(page: Any, task_id: str) -> Any:
    return page.locator(f"#recent-list li[data-task-id='{task_id}']")


def _wait_video(page: Any) -> dict[str, Any]:
    """Waits until the <video> has metadata, or the browser gave up decoding it."""
    handle = page.wait_for_function(
        """() => {
            const v = document.querySelector('#result-video');
            if (!v || !v.getAttribute('src')) return null;
            if (v.readyState >= 1 || v.error) {
                return {ready: v.readyState, duration: v.duration,
                        error: v.error ? v.error.code : null, src: v.currentSrc};
            }
            return null;
        }""",
        timeout=30_000,
    )
    state: dict[str, Any] = handle.json_value()
    return state


def test_round_trip_image_reference(
    live_server: Callable[..., LiveServer], media: MediaServer, page: Any
) -> None:
    server = live_server()

    # A wrong key: the synchronous DashScope error is shown with its code and message.
    _open(page, server, key="sk-wrong")
    _fill_image_reference(page, media.url("/subject.png"))
    page.get_by_role("button", name="Generate video").click()
    form_error = page.locator("#form-error")
    pw.expect(form_error).to_contain_text("InvalidApiKey")
    pw.expect(form_error).to_contain_text("Invalid API-key provided.")

    # The right key; an unreachable image: the task FAILS and shows output.code / message.
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_label("Reference image 1 URL").fill(media.url("/missing.png"))
    _submit(page)
    pw.expect(form_error).to_be_hidden()
    pw.expect(page.locator("#task-status")).to_have_text("FAILED", timeout=TASK_TIMEOUT_MS)
    pw.expect(page.locator("#task-error")).to_contain_text("InvalidURL")
    failed_id = _task_id(page)

    # The real thing.
    page.get_by_label("Reference image 1 URL").fill(media.url("/subject.png"))
    page.locator("#seed").fill("7")
    sent = _submit(page)
    assert sent["_headers"]["x-dashscope-async"] == "enable"
    assert "x-dashscope-ossresourceresolve" not in sent["_headers"]
    assert sent["model"] == "wanx2.1-vace-plus"
    assert sent["input"] == {
        "function": "image_reference",
        "prompt": "a red ball",
        "ref_images_url": [media.url("/subject.png")],
    }
    assert sent["parameters"] == {
        "obj_or_bg": ["obj"],
        "size": "960*960",
        "prompt_extend": True,
        "watermark": False,
        "seed": 7,
    }
    pw.expect(page.locator("#task-id")).not_to_have_text(failed_id)
    task_id = _task_id(page)
    pw.expect(page.locator("#task-status")).to_have_text("SUCCEEDED", timeout=TASK_TIMEOUT_MS)
    pw.expect(page.locator("#progress")).to_be_hidden()
    pw.expect(page.locator("#cancel")).to_be_disabled()

    # The result: the signed, key-less video_url in a <video> element.
    video_url = server.query(task_id)["output"]["video_url"]
    video = page.locator("#result-video")
    pw.expect(video).to_have_attribute("src", video_url)
    pw.expect(page.locator("#result-download")).to_have_attribute("href", video_url)
    pw.expect(page.locator("#result-download")).to_have_attribute("download", f"{task_id}.mp4")
    pw.expect(page.locator("#result-usage")).to_contain_text("seed 7")
    state = _wait_video(page)
    if state["error"] is None:
        assert state["ready"] >= 1 and state["duration"] > 0, state
    else:
        # This Chromium build cannot decode H.264: the page still points at the right file.
        download = httpx.get(video_url, timeout=30)
        assert download.status_code == 200
        assert download.headers["content-type"] == "video/mp4"
    pw.expect(page.locator("#result-orig")).to_have_text("a red ball")

    # The recent-tasks list has both tasks, newest first, with their final status.
    row = _recent_row(page, task_id)
    pw.expect(row.locator(".badge")).to_have_text("SUCCEEDED")
    pw.expect(_recent_row(page, failed_id).locator(".badge")).to_have_text("FAILED")
    ids = page.locator("#recent-list li").evaluate_all("els => els.map(e => e.dataset.taskId)")
    assert ids[:2] == [task_id, failed_id]

    if state["error"] is None:  # let the first frame show in the screenshot
        page.wait_for_function("document.querySelector('#result-video').readyState >= 4")
        page.wait_for_timeout(1000)  # the controls' loading spinner fades out
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)

    # Reload: the key comes back from localStorage; a click on a row opens that task.
    page.goto(f"{server.base_url}/playground")
    pw.expect(page.get_by_label("API key")).to_have_value(API_KEY)
    pw.expect(page.locator("#task-view")).to_be_hidden()
    _recent_row(page, failed_id).get_by_role("button").click()
    pw.expect(page.locator("#task-id")).to_have_text(failed_id)
    pw.expect(page.locator("#task-error")).to_contain_text("InvalidURL")
    _recent_row(page, task_id).get_by_role("button").click()
    pw.expect(page.locator("#task-status")).to_have_text("SUCCEEDED")
    pw.expect(video).to_have_attribute("src", video_url)
    pw.expect(page.locator("#task-error")).to_be_hidden()


def test_form_shows_only_the_functions_fields(
    live_server: Callable[..., LiveServer], page: Any
) -> None:
    server = live_server(VACE_WORKERS="0")
    _open(page, server)
    # Per function, the controls (labels, or #ids) that must show; every other one must not.
    visible = {
        "image_reference": ["Reference image 1 URL", "Reference image 1 role", "Size"],
        "video_repainting": [
            "Reference image URL",
            "Input video URL",
            "#control_condition",
            "Strength",
        ],
        "video_edit": [
            "Reference image URL",
            "Input video URL",
            "Mask image URL",
            "Mask frame",
            "#control_condition",
            "Mask type",
            "Expand mode",
            "Expand ratio",
            "Size",
        ],
        "video_extension": [
            "First frame URL",
            "Last frame URL",
            "First clip URL",
            "Last clip URL",
            "Motion reference video URL",
            "#control_condition",
        ],
        "video_outpainting": ["Input video URL", "Top", "Bottom", "Left", "Right"],
    }
    names = {
        "image_reference": "Multi-image reference",
        "video_repainting": "Video repainting",
        "video_edit": "Local editing",
        "video_extension": "Video extension",
        "video_outpainting": "Frame expansion",
    }
    everything = {label for labels in visible.values() for label in labels}
    for function, labels in visible.items():
        page.get_by_label(names[function]).check()
        for label in everything:
            locator = (
                page.locator(label)
                if label.startswith("#")
                else page.get_by_label(label, exact=True)
            )
            if label in labels:
                pw.expect(locator).to_be_visible()
            else:
                pw.expect(locator).to_be_hidden()
    # The control_condition subset follows the function.
    page.get_by_label("Video repainting").check()
    options = page.locator("#control_condition option").evaluate_all("els => els.map(e => e.value)")
    assert options == ["", "posebodyface", "posebody", "depth", "scribble"]
    page.get_by_label("Local editing").check()
    options = page.locator("#control_condition option").evaluate_all("els => els.map(e => e.value)")
    assert options == ["", "posebodyface", "depth"]
    # A repainting request carries exactly that function's fields.
    page.get_by_label("Video repainting").check()
    page.locator("#prompt").fill("steampunk car")
    page.get_by_label("Input video URL").fill("http://example.com/car.mp4")
    page.locator("#control_condition").select_option("depth")
    page.locator("#strength").fill("0.6")
    body = _submit(page)
    assert body["input"] == {
        "function": "video_repainting",
        "prompt": "steampunk car",
        "video_url": "http://example.com/car.mp4",
    }
    assert body["parameters"] == {
        "control_condition": "depth",
        "strength": 0.6,
        "prompt_extend": False,
        "watermark": False,
    }
    pw.expect(page.locator("#task-status")).to_have_text("PENDING")
    pw.expect(page.locator("#progress-stage")).to_have_text("Queued")
    pw.expect(page.locator("#progress-detail")).to_have_text("Position in queue: 1")


def _uploads_available(server: LiveServer) -> bool:
    r = httpx.get(
        f"{server.api}/uploads",
        params={"action": "getPolicy", "model": "wanx2.1-vace-plus"},
        headers=server.headers(),
        timeout=10,
    )
    return r.status_code == 200


def test_local_file_goes_through_the_upload_flow(
    live_server: Callable[..., LiveServer], page: Any, tmp_path: Path
) -> None:
    server = live_server()
    if not _uploads_available(server):
        pytest.xfail("the upload endpoints (GET /api/v1/uploads?action=getPolicy) are not wired")
    picture = tmp_path / "球 subject.png"
    picture.write_bytes(png_bytes(subject_on_white()))

    _open(page, server)
    page.get_by_label("Multi-image reference").check()
    page.locator("#prompt").fill("a ball from a local file")
    slot = page.get_by_role("group", name="Reference image 1")
    slot.get_by_label("Local file").check()
    page.get_by_label("Reference image 1 file").set_input_files(str(picture))
    page.locator("#size").select_option("960*960")
    sent = _submit(page)

    assert sent["_headers"]["x-dashscope-ossresourceresolve"] == "enable"
    (url,) = sent["input"]["ref_images_url"]
    assert url.startswith("oss://dashscope-instant/") and url.endswith("/subject.png"), url
    pw.expect(page.locator("#task-status")).to_have_text("SUCCEEDED", timeout=TASK_TIMEOUT_MS)
    pw.expect(page.locator("#result-video")).to_have_attribute("src", re.compile(r"^https?://"))


@pytest.mark.slow  # half a minute of denoising, then the cancel: about a minute
def test_cancel_a_running_task(
    live_server: Callable[..., LiveServer], media: MediaServer, page: Any
) -> None:
    server = live_server(
        # 81 frames at 256x256 (~0.3 s a step here) x 100 steps: half a minute of denoising
        # even on a quiet machine, so the cancel always lands mid-run
        VACE_NUM_INFERENCE_STEPS="100",
        VACE_NUM_FRAMES="81",
        VACE_GENERATION_AREA="65536",
    )
    _open(page, server)
    _fill_image_reference(page, media.url("/subject.png"), prompt="a long run")
    _submit(page)
    task_id = _task_id(page)

    # Live progress: stage, step / total, a determinate bar, an ETA.
    detail = page.locator("#progress-detail")
    pw.expect(detail).to_contain_text("/ 100", timeout=60_000)
    pw.expect(detail).to_contain_text("ETA")
    pw.expect(page.locator("#task-status")).to_have_text("RUNNING")
    pw.expect(page.locator("#progress-stage")).to_have_text("Denoising")
    percent = page.locator("#progress-bar").evaluate("el => el.position >= 0 ? el.value : -1")
    assert 10 <= percent < 90
    pw.expect(page.locator("#progress-percent")).to_contain_text("%")

    cancel = page.get_by_role("button", name="Cancel task")
    pw.expect(cancel).to_be_enabled()
    cancel.click()
    pw.expect(page.locator("#task-status")).to_have_text("CANCELED", timeout=30_000)
    pw.expect(cancel).to_be_disabled()
    pw.expect(page.locator("#progress")).to_be_hidden()
    pw.expect(page.locator("#task-error")).to_contain_text("canceled")
    pw.expect(page.locator("#result")).to_be_hidden()
    pw.expect(_recent_row(page, task_id).locator(".badge")).to_have_text("CANCELED")
    assert server.query(task_id)["output"]["task_status"] == "CANCELED"


def test_without_a_key_the_list_asks_for_it_and_a_new_key_clears_the_old_list(
    live_server: Callable[..., LiveServer], page: Any
) -> None:
    server = live_server(VACE_WORKERS="0")
    task_id = server.submit(
        {
            "model": "wanx2.1-vace-plus",
            "input": {
                "function": "image_reference",
                "prompt": "a red ball",
                "ref_images_url": ["https://media.invalid/subject.png"],
            },
            "parameters": {"size": "960*960"},
        }
    )
    page.goto(f"{server.base_url}/playground")
    need_key = page.locator("#recent-need-key")
    pw.expect(need_key).to_be_visible()  # asked for, not a red InvalidApiKey
    pw.expect(need_key).to_contain_text("data/api_key")
    pw.expect(page.locator("#recent-error")).to_be_hidden()

    page.get_by_label("API key").fill(API_KEY)  # the account's tasks appear
    pw.expect(need_key).to_be_hidden()
    pw.expect(page.locator("#recent-list")).to_contain_text(task_id[:8])

    page.get_by_label("API key").fill("sk-someone-else")  # another key: the old list goes
    pw.expect(page.locator("#recent-list")).not_to_contain_text(task_id[:8])
    pw.expect(page.locator("#recent-error")).to_contain_text("InvalidApiKey")


@pytest.mark.slow  # a server with a worker (the registry row the form reads): about 15 s
def test_missing_annotators_watermark_preview_and_no_carry_over(
    live_server: Callable[..., LiveServer], page: Any
) -> None:
    server = live_server()  # one worker, no VACE_ANNOTATOR_DIR: no depth, no pose checkpoint
    _open(page, server)
    page.get_by_label("Video repainting").check()
    select = page.locator("#control_condition")
    for control in ("depth", "posebody", "posebodyface"):
        option = select.locator(f"option[value={control}]")
        pw.expect(option).to_be_disabled()
        pw.expect(option).to_contain_text("(not installed)")
    pw.expect(select.locator("option[value=scribble]")).to_be_enabled()
    hint = page.locator("#control-hint")
    pw.expect(hint).to_contain_text("Not installed: posebodyface, posebody")
    pw.expect(hint).to_contain_text("posebody (VACE_ANNOTATOR_DIR/pose/)")
    pw.expect(hint).to_contain_text("depth (VACE_ANNOTATOR_DIR/depth/)")
    pw.expect(hint).to_contain_text("docs/model-inputs.md §5.6")
    # The watermark's preview is the server's own rendering of the mark, loaded as an image.
    mark = page.locator("#watermark-preview")
    pw.expect(mark).to_be_visible()
    size = mark.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert size[0] and size[1] > 2 * size[2] > 0, size
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-annotators.png"), full_page=True)

    # Local editing's input video and mask are not sent with (nor kept for) another function.
    page.get_by_label("Local editing").check()
    page.get_by_label("Input video URL").fill("http://example.com/v.mp4")
    page.get_by_label("Mask image URL").fill("http://example.com/mask.png")
    preview = page.locator("#request-preview")
    pw.expect(preview).to_contain_text("mask.png")
    page.get_by_label("Multi-image reference").check()
    pw.expect(preview).to_contain_text('"function": "image_reference"')
    pw.expect(preview).not_to_contain_text("mask")
    pw.expect(preview).not_to_contain_text("v.mp4")
    page.get_by_label("Local editing").check()
    pw.expect(page.get_by_label("Mask image URL")).to_have_value("")
    pw.expect(page.get_by_label("Input video URL")).to_have_value("")
    pw.expect(preview).not_to_contain_text("mask.png")
