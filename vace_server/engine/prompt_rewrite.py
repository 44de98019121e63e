"""`prompt_extend`: rewrite a short prompt into a detailed video description with any
OpenAI-compatible chat-completions endpoint. A rewriter failure never fails the task: the
prompt is used as given and the failure is logged."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import httpx

from vace_server.settings import Settings, reveal

log = logging.getLogger(__name__)

MAX_REWRITE_CHARS = 2000

SYSTEM_PROMPT = """\
You turn a user's short request into one prompt for a text-and-reference-guided video model.
Write a single English paragraph of 60 to 100 words describing the video as it should look:
the subject and its appearance, what it does and how it moves, the setting, lighting, colours,
visual style and camera movement. Keep every element the user named, in the user's intent;
do not add people, objects or text the user did not ask for unless the scene obviously needs
them. Describe, do not instruct: write "A brown dog runs along a beach at sunset, ..." and
never "Generate a video of ...". If the request is not in English, translate it faithfully.
Answer with the prompt only: no title, no quotes, no explanation."""

FUNCTION_HINTS = {
    "image_reference": "The user supplies reference images of the subjects and scene.",
    "video_repainting": "The video keeps the motion and composition of an input video.",
    "video_edit": "Only a masked region of an input video changes; describe that region's "
    "new content within the whole scene.",
    "video_extension": "The video continues from (or leads into) given frames or clips.",
    "video_outpainting": "An input video is extended beyond its borders; describe the wider scene.",
}


class PromptRewriter(Protocol):
    def rewrite(self, prompt: str, *, function: str) -> str:
        """Returns the rewritten prompt. Raises on any failure."""
        ...


class RewriteError(RuntimeError):
    pass


class ChatCompletionsRewriter:
    """POSTs to `<base_url>/chat/completions` (OpenAI wire format)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )
        self.model = model

    def rewrite(self, prompt: str, *, function: str) -> str:
        hint = FUNCTION_HINTS.get(function, "")
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": f"{SYSTEM_PROMPT}\n{hint}".strip()},
                {"role": "user", "content": prompt},
            ],
            "temperature": 0.7,
            "max_tokens": 400,
        }
        try:
            response = self._client.post("/chat/completions", json=body)
            response.raise_for_status()
            text = response.json()["choices"][0]["message"]["content"]
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise RewriteError(f"prompt rewriter failed: {exc!r}") from exc
        if not isinstance(text, str) or not text.strip():
            raise RewriteError("prompt rewriter returned no text")
        return text.strip().strip('"').strip()[:MAX_REWRITE_CHARS]


def build_rewriter(settings: Settings) -> PromptRewriter | None:
    """The configured rewriter, or None (then `actual_prompt` is the prompt as given)."""
    if not settings.prompt_rewrite.prompt_rewrite_url:
        return None
    return ChatCompletionsRewriter(
        settings.prompt_rewrite.prompt_rewrite_url,
        settings.prompt_rewrite.prompt_rewrite_model or "default",
        api_key=reveal(settings.prompt_rewrite.prompt_rewrite_api_key),
        timeout=settings.prompt_rewrite.prompt_rewrite_timeout,
    )


def extend_prompt(rewriter: PromptRewriter | None, prompt: str, *, function: str) -> str:
    """The prompt to generate with when `prompt_extend` is on. Never raises."""
    if rewriter is None:
        return prompt
    try:
        return rewriter.rewrite(prompt, function=function)
    except Exception as exc:
        log.warning("%s; using the prompt as given", exc)
        return prompt
