"""The API process stays small: building the app never imports torch or diffusers."""

from __future__ import annotations

import subprocess
import sys


def test_api_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import vace_server.api.app, vace_server.cli, vace_server.worker.supervisor\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
