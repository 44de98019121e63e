"""Worker-group settings (VACE_GPUS_PER_TASK, VACE_CONTEXT_PARALLEL): refused at load in one
line, before any rank starts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vace_server.settings import Settings, describe_invalid


def refusal(**kwargs: object) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**kwargs)  # type: ignore[arg-type]
    return describe_invalid(caught.value)


def test_ring_needs_an_lse_kernel_only_in_a_group() -> None:
    line = refusal(gpus_per_task=2, context_parallel="ring")
    assert "VACE_CONTEXT_PARALLEL=ring needs VACE_ATTENTION_BACKEND set to one of" in line
    assert "not 'native'; or use ulysses" in line
    assert Settings(gpus_per_task=2, context_parallel="ring", attention_backend="flash")
    assert Settings(context_parallel="ring").engine.gpus_per_task == 1  # no group: unused


def test_group_size_and_mode_are_checked() -> None:
    assert "VACE_GPUS_PER_TASK='0'" in refusal(gpus_per_task="0")
    assert "VACE_CONTEXT_PARALLEL='pipefusion'" in refusal(context_parallel="pipefusion")
    assert Settings(gpus_per_task="4").engine.gpus_per_task == 4
