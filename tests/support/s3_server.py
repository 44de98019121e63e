"""A real S3-compatible server for tests: moto's standalone server (`python -m moto.server`) in
its own process on a free loopback port, spoken to over HTTP like any S3 service.

`s3_server` (session) starts one per test session and stops it at the end; `s3_bucket` gives
each test a fresh, empty bucket on it. Import both into a conftest to use them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.support.live_server import free_port

ACCESS_KEY_ID = "AKIAVACETESTKEY00000"
SECRET_ACCESS_KEY = "vace-test-secret-access-key"
REGION = "us-east-1"


class S3Server:
    """`start()` blocks until the server answers; `stop()` terminates it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = Path(tempfile.mkstemp(prefix="moto-", suffix=".log")[1])

    def start(self, timeout: float = 30.0) -> S3Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited early:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.endpoint}/moto-api/", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto server not ready in {timeout}s:\n{self.log_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.unlink(missing_ok=True)

    def log_text(self) -> str:
        return self._log.read_text(errors="replace")[-4000:]

    def client(self) -> Any:
        """A boto3 client with the test credentials (what an operator's tools would use)."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def create_bucket(self) -> str:
        name = f"vace-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self) -> dict[str, Any]:
        """The `Settings` fields that point the server at this S3 service."""
        return {
            "s3_endpoint_url": self.endpoint,
            "s3_region": REGION,
            "s3_access_key_id": ACCESS_KEY_ID,
            "s3_secret_access_key": SECRET_ACCESS_KEY,
            "s3_addressing_style": "path",
        }

    def env(self, storage_url: str) -> dict[str, str]:
        """The same as `VACE_*` environment variables, plus `VACE_STORAGE_URL`."""
        env = {f"VACE_{k.upper()}": str(v) for k, v in self.settings().items()}
        env["VACE_STORAGE_URL"] = storage_url
        return env

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in `bucket` under `prefix`, sorted."""
        listed = self.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for obj in listed.get("Contents", []))

    def get(self, bucket: str, key: str) -> bytes:
        body: bytes = self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new empty bucket (buckets are not removed: the server dies with the session)."""
    return s3_server.create_bucket()
