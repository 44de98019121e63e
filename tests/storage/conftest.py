"""The S3 fixtures (a moto server process for the session, a fresh bucket per test)."""

from tests.support.s3_server import s3_bucket, s3_server

__all__ = ["s3_bucket", "s3_server"]
