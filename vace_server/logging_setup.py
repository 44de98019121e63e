"""Process-wide logging configuration (plain text to stderr)."""

from __future__ import annotations

import logging
import os


def configure_logging(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("VACE_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s",
    )
