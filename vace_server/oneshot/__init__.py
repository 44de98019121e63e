"""`vace-server generate`: run one task locally, without a server, database or storage.

The options are read by the API's own request rules (`api.validation.parse_request_values`
over `OptionValues`), so the CLI accepts and refuses exactly what the API does, with the same
codes and messages, and the TaskSpec is built directly from them (no request body).

Local files. A local path (or a local `file://` URL) is checked first (a readable regular
file, else a usage error) and goes into the TaskSpec as the `file://` URL of the resolved
file; the URL rules accept exactly those besides what a client may send, and
`LocalMediaSource` reads them through the same checks as downloads: the byte caps (10 MB
images, 50 MB videos), then `load_image` / `load_mask_image` / `open_video` on their bytes.
Real URLs go to `MediaFetcher` with the download rules (caps, timeouts, redirects) but not
the address rule: the command runs on the user's machine for them, so loopback and private
URLs are reached without VACE_MEDIA_ALLOW_PRIVATE_NETWORKS (`run.local_machine_fetcher`).

Then the worker's task pipeline runs (`worker.pipeline.TaskPipeline`: build_inputs → prompt
extension → generate → render_video → encode_mp4), reporting to a `rich` progress display on
stderr (stages, denoising steps, ETA).

Exit codes: 0 success; 1 the task failed (a DashScope async error such as InvalidFile.Format,
InternalError.Algo, or the model could not be loaded); 2 usage errors (a request the API
would answer with HTTP 400, a missing local file, an unusable --out). Errors are printed as
`<code>: <message>` on stderr, never as a traceback.
"""

from vace_server.oneshot.local_media import LocalMediaSource
from vace_server.oneshot.request import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    OneShotOptions,
    OptionValues,
    UsageError,
    build_spec,
    local_path,
    media_url,
)
from vace_server.oneshot.run import generate_one, run

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "LocalMediaSource",
    "OneShotOptions",
    "OptionValues",
    "UsageError",
    "build_spec",
    "generate_one",
    "local_path",
    "media_url",
    "run",
]
