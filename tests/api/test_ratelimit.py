from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import KEY_A, KEY_B, auth
from vace_server.api.app import create_app
from vace_server.api.ratelimit import Limits, RateLimiter
from vace_server.errors import ConcurrencyQuota, RateQuota
from vace_server.settings import Settings

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
BODY = {
    "model": "wanx2.1-vace-plus",
    "input": {"function": "image_reference", "prompt": "p", "ref_images_url": ["http://a/b.png"]},
}


class Ticker:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_refills() -> None:
    ticker = Ticker()
    limiter = RateLimiter(Limits(submit_per_second=2), clock=ticker)
    limiter.check_submit("a", lambda: 0)
    limiter.check_submit("a", lambda: 0)
    with pytest.raises(RateQuota) as caught:
        limiter.check_submit("a", lambda: 0)
    assert caught.value.retry_after == pytest.approx(0.5)
    limiter.check_submit("b", lambda: 0)  # other accounts are unaffected
    ticker.t += 0.5
    limiter.check_submit("a", lambda: 0)


def test_in_flight_limit_and_per_account_override() -> None:
    limiter = RateLimiter(Limits(in_flight=2), {"big": Limits(in_flight=10)})
    limiter.check_submit("a", lambda: 1)
    with pytest.raises(ConcurrencyQuota):
        limiter.check_submit("a", lambda: 2)
    limiter.check_submit("big", lambda: 9)


def test_off_by_default() -> None:
    limiter = RateLimiter.from_settings(Settings())
    assert limiter.limits("a") == Limits()  # no limit of any kind
    for _ in range(100):  # and nothing is refused, however many
        limiter.check_submit("a", lambda: 1000)
        limiter.check_query("a")


def test_settings_overrides_are_validated() -> None:
    settings = Settings(rate_limit_in_flight=2, rate_limits='{"x": {"submit_per_second": 5}}')
    limiter = RateLimiter.from_settings(settings)
    assert limiter.limits("x") == Limits(submit_per_second=5, in_flight=2)
    with pytest.raises(ValueError, match="unknown keys"):
        RateLimiter.from_settings(Settings(rate_limits='{"x": {"rps": 5}}'))


def test_burst_over_http_gets_429_with_literal_message(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        api_keys=f"{KEY_A}=a,{KEY_B}=b",
        workers=0,
        rate_limit_submit_per_second=2,
        rate_limit_in_flight=3,
    )
    with TestClient(create_app(settings)) as client:
        codes = [client.post(CREATE, json=BODY, headers=auth()).status_code for _ in range(10)]
        assert codes[:2] == [200, 200]
        assert 429 in codes
        r = client.post(CREATE, json=BODY, headers=auth())
        assert r.status_code == 429
        assert r.json()["code"] in ("Throttling.RateQuota", "Throttling.Concurrency")
        assert int(r.headers["Retry-After"]) >= 1
        first_b = client.post(CREATE, json=BODY, headers=auth(KEY_B))
        assert first_b.status_code == 200  # limits are per account
        over = [client.post(CREATE, json=BODY, headers=auth(KEY_B)) for _ in range(5)]
        limited = [r for r in over if r.status_code == 429]
        assert limited and limited[0].json() == {
            "code": "Throttling.RateQuota",
            "message": "Requests rate limit exceeded, please try again later.",
            "request_id": limited[0].json()["request_id"],
        }
        # rejected creates never created a task: account a holds at most its 3 in flight
        tasks = client.get("/api/v1/tasks", headers=auth()).json()
        assert tasks["total"] <= 3


@pytest.mark.parametrize(("shared", "allowed"), [(True, 2), (False, 4)])
def test_two_replicas_share_the_limit(tmp_path: Path, shared: bool, allowed: int) -> None:
    """Two API apps on one database: shared buckets allow the limit once, per-process twice."""
    settings = Settings(
        data_dir=tmp_path,
        api_keys=f"{KEY_A}=a",
        workers=0,
        rate_limit_query_per_second=2,
        rate_limit_shared=shared,
    )
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        codes = [
            client.get("/api/v1/tasks", headers=auth()).status_code
            for _ in range(4)
            for client in (one, two)
        ]
    assert codes.count(200) == allowed
    assert set(codes) == {200, 429}
