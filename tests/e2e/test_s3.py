"""A live server with `VACE_STORAGE_URL=s3://bucket/prefix` against a real S3-compatible server
process (moto): results and uploads go to the bucket, `video_url` is a presigned S3 URL, and
the data folder keeps no output or uploaded file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import av
import dashscope
import httpx
import pytest

from tests.support.images import png_bytes, subject_on_white
from tests.support.live_server import API_KEY, LiveServer
from tests.support.media_server import MediaServer
from tests.support.s3_server import S3Server

MODEL = "wanx2.1-vace-plus"
PREFIX = "tenant/vace"
RETENTION_SECONDS = 24 * 3600


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[S3Server, str]]:
    server = S3Server().start()
    yield server, server.create_bucket()
    server.stop()


@pytest.fixture(scope="module")
def server(
    s3: tuple[S3Server, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    s3_server, bucket = s3
    root = tmp_path_factory.mktemp("s3-e2e")
    live = LiveServer(
        root / "data", root / "server.log", **s3_server.env(f"s3://{bucket}/{PREFIX}")
    )
    live.start()
    yield live
    live.stop()


def _local_files(server: LiveServer) -> list[Path]:
    """Files in the data folder other than the database, keys and secrets."""
    return [
        p
        for p in server.data_dir.rglob("*")
        if p.is_file() and p.parent != server.data_dir  # top level: vace.db, api_key, secrets
    ]


def test_task_result_is_a_presigned_s3_url(
    server: LiveServer, s3: tuple[S3Server, str], media: MediaServer, tmp_path: Path
) -> None:
    s3_server, bucket = s3
    task_id = server.submit(
        {
            "model": MODEL,
            "input": {
                "function": "image_reference",
                "prompt": "a red ball",
                "ref_images_url": [media.url("/subject.png")],
            },
            "parameters": {"size": "960*960", "seed": 5, "prompt_extend": False},
        }
    )
    body = server.wait(task_id)
    assert body["output"]["task_status"] == "SUCCEEDED", (body, server.log_text())
    url = body["output"]["video_url"]
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == s3_server.endpoint
    assert parts.path.startswith(f"/{bucket}/{PREFIX}/outputs/")
    assert parts.path.endswith(".mp4") and task_id in parts.path
    query = parse_qs(parts.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert RETENTION_SECONDS - 120 <= int(query["X-Amz-Expires"][0]) <= RETENTION_SECONDS

    response = httpx.get(url, timeout=30)  # no credentials, no Authorization
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    path = tmp_path / "out.mp4"
    path.write_bytes(response.content)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert (len(frames), stream.codec_context.name) == (30, "h264")
        assert (frames[0].width, frames[0].height) == (960, 960)

    assert s3_server.keys(bucket, f"{PREFIX}/outputs/") == [parts.path[len(bucket) + 2 :]]
    assert not [p for p in server.data_dir.rglob("*.mp4")]
    assert not (server.data_dir / "outputs").exists()


def test_sdk_upload_goes_to_the_bucket(
    server: LiveServer, s3: tuple[S3Server, str], tmp_path: Path
) -> None:
    s3_server, bucket = s3
    subject = tmp_path / "subject.png"
    subject.write_bytes(png_bytes(subject_on_white()))
    client = dashscope.Client(api_key=API_KEY, base_url=server.api)
    job = client.videos.jobs.create(
        model=MODEL,
        prompt="a red ball",
        function="image_reference",
        extra_input={"ref_images_url": [f"file://{subject}"]},
        size="960*960",
        seed=3,
        prompt_extend=False,
    )
    done = client.videos.jobs.wait(job, poll_interval=0.2, max_interval=1.0)
    assert done.status == "SUCCEEDED", (done, server.log_text())
    assert done.video_url and done.video_url.startswith(f"{s3_server.endpoint}/{bucket}/")
    uploaded = s3_server.keys(bucket, f"{PREFIX}/uploads/")
    assert [k.rsplit("/", 1)[1] for k in uploaded] == ["subject.png"]
    assert uploaded[0].startswith(f"{PREFIX}/uploads/dashscope-instant/")
    assert s3_server.get(bucket, uploaded[0]) == subject.read_bytes()
    # nothing of the upload or the results stays in the data folder (.incoming is empty)
    assert _local_files(server) == []
