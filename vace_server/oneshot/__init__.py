"""`vace-server generate`: run one task locally, without a server, database or storage.

The command line is turned into the DashScope create body a client would send and validated by
`api.validation.parse_create_request`, the single source of truth for the request rules, so
the CLI accepts and refuses exactly what the API does, with the same codes and messages.

Local files. The contract's URL rules accept only `http(s)://` (and `oss://` behind a
header), so a local path cannot travel through the body as `file://`. Each local path (or
`file://` URL) is instead given a placeholder URL `http://vace-oneshot.invalid/<run token>/<n>`
in the body, and `LocalMediaSource` maps exactly those URLs back to their files. The
placeholder passes the URL checks like any client URL; its `.invalid` host is reserved
(RFC 6761) so it can never reach the network, and the per-run token means no URL a user
typed can collide with one. The validator's messages name fields, never URLs, so placeholders
do not leak into errors. Local files then go through the same checks as downloads: the
contract's byte caps (10 MB images, 50 MB videos), then `load_image` / `load_mask_image` /
`open_video` on their bytes. Real URLs go to `MediaFetcher` (hostile-URL rules included; set
VACE_MEDIA_ALLOW_PRIVATE_NETWORKS=1 for a URL on a local network).

Then the worker's pipeline runs: build_inputs → prompt extension → generate → render_output →
encode_mp4, with a `rich` progress display on stderr (stages, denoising steps, ETA).

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
    PLACEHOLDER_HOST,
    LocalFiles,
    OneShotOptions,
    UsageError,
    build_body,
)
from vace_server.oneshot.run import OneShotResult, generate_one, run

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "PLACEHOLDER_HOST",
    "LocalFiles",
    "LocalMediaSource",
    "OneShotOptions",
    "OneShotResult",
    "UsageError",
    "build_body",
    "generate_one",
    "run",
]
