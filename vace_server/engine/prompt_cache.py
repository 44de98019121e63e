"""Encoded prompts, kept per worker (`VACE_PROMPT_CACHE_SIZE` entries, least recently used
first out), so the text encoder (UMT5-XXL for the real models) runs once per distinct prompt:
a repeated prompt, and the default negative prompt, reach the pipeline as `prompt_embeds` /
`negative_prompt_embeds`.

Keys are (model, prompt, sequence length): the same text encodes differently for another
model or padding length. The default negative prompt is pinned (encoded once per worker, at
load, and never evicted), since nearly every CFG task uses it. The tensors stay on the device
the pipeline encodes on (a UMT5 embedding is 512 x 4096 values: 4 MiB in bf16)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import torch

__all__ = ["PromptCache", "build_prompt_cache", "encode_prompt"]

CacheKey = tuple[str, str, int]


def encode_prompt(pipe: Any, text: str, max_sequence_length: int) -> torch.Tensor:
    """The pipeline's own encoding of `text` (what it would compute from `prompt=`), on its
    execution device. Side effects: runs the text encoder once."""
    with torch.inference_mode():
        embeds, _ = pipe.encode_prompt(
            prompt=text,
            do_classifier_free_guidance=False,
            num_videos_per_prompt=1,
            max_sequence_length=max_sequence_length,
            device=pipe._execution_device,
        )
    return embeds


class PromptCache:
    """LRU of encoded prompts for one loaded pipeline, plus one pinned entry. Thread-safe (a
    look-ahead thread may encode while the model thread reads)."""

    def __init__(self, pipe: Any, *, model: str, max_entries: int):
        self.pipe = pipe
        self.model = model
        self.max_entries = max_entries
        self._entries: OrderedDict[CacheKey, torch.Tensor] = OrderedDict()
        self._pinned: dict[CacheKey, torch.Tensor] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def pin(self, text: str, max_sequence_length: int) -> None:
        """Encodes `text` now and keeps it for the worker's life (the default negative)."""
        key = (self.model, text, max_sequence_length)
        if key not in self._pinned:
            self._pinned[key] = encode_prompt(self.pipe, text, max_sequence_length)

    def embeds(self, text: str, max_sequence_length: int) -> torch.Tensor:
        """`text` encoded to `max_sequence_length` tokens: from the cache, or encoded now and
        cached (evicting the least recently used entry past `max_entries`)."""
        key = (self.model, text, max_sequence_length)
        with self._lock:
            found = self._pinned.get(key)
            if found is None and key in self._entries:
                self._entries.move_to_end(key)
                found = self._entries[key]
            if found is not None:
                self.hits += 1
                return found
            self.misses += 1
        encoded = encode_prompt(self.pipe, text, max_sequence_length)
        with self._lock:
            self._entries[key] = encoded
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return encoded

    def __len__(self) -> int:
        return len(self._entries)


def build_prompt_cache(
    pipe: Any,
    *,
    model: str,
    size: int,
    max_sequence_length: int,
    default_negative: str | None,
) -> PromptCache | None:
    """The worker's cache, None when `size` is 0 (off: the pipeline encodes every prompt).
    `default_negative` (None when the preset runs without CFG, which never reads it) is
    encoded now. Side effects: runs the text encoder once for it."""
    if size <= 0:
        return None
    cache = PromptCache(pipe, model=model, max_entries=size)
    if default_negative:
        cache.pin(default_negative, max_sequence_length)
    return cache
