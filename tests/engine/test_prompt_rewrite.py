from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_chat import FakeChat
from vace_server.engine.prompt_rewrite import (
    ChatCompletionsRewriter,
    build_rewriter,
    extend_prompt,
)
from vace_server.settings import Settings


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    server = FakeChat()
    yield server
    server.release.set()
    server.httpd.shutdown()
    server.httpd.server_close()


def test_rewrites_through_chat_completions(chat: FakeChat) -> None:
    rewriter = ChatCompletionsRewriter(chat.url, "qwen", api_key="k", timeout=5)
    out = extend_prompt(rewriter, "a red ball", function="image_reference")
    assert out == "A red ball rolls across a sunny wooden table."
    request = chat.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer k"
    assert request["body"]["model"] == "qwen"
    assert request["body"]["messages"][-1] == {"role": "user", "content": "a red ball"}
    assert "reference images" in request["body"]["messages"][0]["content"]


@pytest.mark.parametrize("mode", ["error", "garbage", "empty", "slow"])
def test_failures_fall_back_to_the_prompt(chat: FakeChat, mode: str) -> None:
    chat.mode = mode
    # A bad answer gets all the time it needs (so the fallback is for the answer, not a
    # timeout on a busy machine); "slow" never answers, so only the short timeout ends it.
    rewriter = ChatCompletionsRewriter(chat.url, "m", timeout=0.5 if mode == "slow" else 30)
    assert extend_prompt(rewriter, "a red ball", function="video_edit") == "a red ball"
    assert len(chat.requests) == 1  # it did ask, once


def test_unreachable_endpoint_falls_back() -> None:
    rewriter = ChatCompletionsRewriter("http://127.0.0.1:9/v1", "m", timeout=0.5)
    assert extend_prompt(rewriter, "p", function="video_edit") == "p"


def test_not_configured_means_prompt_as_given() -> None:
    assert build_rewriter(Settings()) is None
    assert extend_prompt(None, "p", function="image_reference") == "p"
    assert isinstance(
        build_rewriter(Settings(prompt_rewrite_url="http://h/v1")), ChatCompletionsRewriter
    )
