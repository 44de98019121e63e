from __future__ import annotations

from pathlib import Path

import pytest

from vace_server.api.accounts import ANONYMOUS, KeyRing, key_id
from vace_server.api.app import build_keyring
from vace_server.errors import InvalidApiKey
from vace_server.settings import Settings


def test_keys_map_to_accounts() -> None:
    ring = KeyRing.parse("sk-a=team, sk-b=team ,sk-c")
    assert ring.authenticate("Bearer sk-a").account == "team"
    assert ring.authenticate("Bearer sk-b").account == "team"
    assert ring.authenticate("bearer sk-c").account == f"acct-{key_id('sk-c')}"
    assert (
        ring.authenticate("Bearer sk-a").api_key_id != ring.authenticate("Bearer sk-b").api_key_id
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "No API-key provided."),
        ("", "No API-key provided."),
        ("Bearer ", "No API-key provided."),
        ("Bearer sk-wrong", "Invalid API-key provided."),
        ("Basic c2stYQ==", "No API-key provided."),
    ],
)
def test_missing_or_wrong_key(header: str | None, message: str) -> None:
    with pytest.raises(InvalidApiKey) as caught:
        KeyRing.parse("sk-a").authenticate(header)
    assert caught.value.message == message


def test_auth_disabled_is_anonymous() -> None:
    ring = KeyRing.parse("", auth_disabled=True)
    assert ring.authenticate(None).account == ANONYMOUS


def test_no_key_configured_generates_one_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path, api_keys="")
    ring, source = build_keyring(settings)
    key = (tmp_path / "api_key").read_text().strip()
    assert key.startswith("sk-") and len(key) > 20
    assert (tmp_path / "api_key").stat().st_mode & 0o777 == 0o600
    # the start-up summary shows a key generated now, and where it is stored
    assert source.generated_key == key
    assert source.text == f"{key} (generated now, stored in {tmp_path / 'api_key'})"
    assert key not in capsys.readouterr().out  # only the summary prints it
    assert ring.authenticate(f"Bearer {key}")
    again, source = build_keyring(settings)  # second start: same key, not shown again
    assert source.generated_key is None and key not in source.text
    assert str(tmp_path / "api_key") in source.text
    assert again.authenticate(f"Bearer {key}")
