"""vace-server: a self-hosted, DashScope-compatible Wan VACE video-editing API."""

__version__ = "0.1.0"
