"""Local files read through the same checks as downloads; URLs go to the hostile-URL fetcher."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from vace_server.errors import InputField, InvalidFile, InvalidURL
from vace_server.media.clip import MediaSource, VideoClip
from vace_server.oneshot.request import local_path


# ---------------------------------------------------------------- media
def _read_capped(path: Path, field: InputField, max_bytes: int) -> bytes:
    """The file's bytes, refused like a download over `max_bytes` (InvalidFile.Size).

    Raises: InvalidFile.Size; InvalidURL when the file cannot be read."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise InvalidURL(
            f"Cannot read the file of {field.mention}: {exc.strerror or exc}."
        ) from exc
    if len(data) > max_bytes:
        raise InvalidFile(
            f"The file of {field.mention} exceeds the size limit of "
            f"{max_bytes / (1024 * 1024):g} MB.",
            code="InvalidFile.Size",
        )
    return data


class LocalMediaSource:
    """`MediaSource` reading `file://` URLs (see `request.media_url`) from local files through
    the download checks (same caps, same loaders) and delegating every other URL to `remote`."""

    def __init__(self, remote: MediaSource) -> None:
        self.remote = remote

    def fetch_image(self, url: str, field: InputField) -> Image.Image:
        from vace_server.media.images import IMAGE_MAX_BYTES, load_image

        path = local_path(url)
        if path is None:
            return self.remote.fetch_image(url, field)
        return load_image(_read_capped(path, field, IMAGE_MAX_BYTES), field)

    def fetch_mask_image(self, url: str, field: InputField) -> Image.Image:
        from vace_server.media.images import IMAGE_MAX_BYTES, load_mask_image

        path = local_path(url)
        if path is None:
            return self.remote.fetch_mask_image(url, field)
        return load_mask_image(_read_capped(path, field, IMAGE_MAX_BYTES), field)

    def fetch_video(self, url: str, field: InputField, *, max_seconds: float) -> VideoClip:
        from vace_server.media.video import VIDEO_MAX_BYTES, open_video

        path = local_path(url)
        if path is None:
            return self.remote.fetch_video(url, field, max_seconds=max_seconds)
        return open_video(
            _read_capped(path, field, VIDEO_MAX_BYTES), field, max_seconds=max_seconds
        )
