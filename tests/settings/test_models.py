"""VACE_MODELS / VACE_SERVED_MODEL (settings/models.py): parsed and checked at load, each
entry's engine settings validated like the deployment's own, one line per problem; a
worker's settings are its served model's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from vace_server.cli import app
from vace_server.settings import Settings, describe_invalid, from_worker_payload, worker_payload

REGISTRY = {
    "big": {
        "model": "tiny-a14b",
        "aliases": ["big-alias"],
        "settings": {"VACE_GUIDANCE_SCALE": 4, "num_inference_steps": 3},
        "workers": 2,
    },
    "small": {"settings": {"VACE_FLOW_SHIFT": 5}},
}


def _settings(registry: object = REGISTRY, **more: object) -> Settings:
    text = registry if isinstance(registry, str) else json.dumps(registry)
    return Settings(models=text, **more)  # type: ignore[arg-type]


def _refusal(registry: object, **more: object) -> str:
    with pytest.raises(ValidationError) as caught:
        _settings(registry, **more)
    return describe_invalid(caught.value)


def test_unset_is_the_one_model_of_today() -> None:
    settings = Settings(model="tiny", guidance_scale=2)
    assert settings.engine.served_models == ()
    assert settings.engine.served_entry() is None
    assert settings.claim_names() is None  # claims every task
    assert settings.for_served_model() is settings


def test_entries_and_the_settings_each_worker_runs_with() -> None:
    settings = _settings(model="tiny", guidance_scale=2)
    big, small = settings.engine.served_models
    assert (big.name, big.aliases, big.weights, big.workers) == (
        "big",
        ("big-alias",),
        "tiny-a14b",
        2,
    )
    assert dict(big.overrides) == {"guidance_scale": 4, "num_inference_steps": 3}
    assert (small.weights, small.workers, dict(small.overrides)) == (None, None, {"flow_shift": 5})

    worker = settings.replace(served_model="big-alias").for_served_model()  # an alias works
    engine = worker.engine
    assert (engine.model, engine.guidance_scale, engine.num_inference_steps) == ("tiny-a14b", 4, 3)
    assert engine.served_model == "big" and worker.claim_names() == ("big", "big-alias")
    other = settings.replace(served_model="small").for_served_model()
    assert (other.engine.model, other.engine.guidance_scale, other.engine.flow_shift) == (
        "tiny",
        2,  # not overridden: the deployment's
        5,
    )
    assert other.claim_names() == ("small",)
    # the worker payload carries the registry and the choice
    back = from_worker_payload(worker_payload(worker))
    assert back.engine.served_model == "big" and back.engine.served_models == (big, small)


def test_a_worker_must_be_told_which_of_several_models() -> None:
    with pytest.raises(ValueError, match="set VACE_SERVED_MODEL"):
        _settings().for_served_model()
    only = _settings({"solo": {"model": "tiny"}})
    assert only.for_served_model().engine.served_model == "solo"  # the only one: no choice


@pytest.mark.parametrize(
    ("registry", "more", "message"),
    [
        ("{not json", {}, "VACE_MODELS: not JSON"),
        ([], {}, "VACE_MODELS: want {"),
        ({"a": {"weights": "x"}}, {}, "unknown keys ['weights']"),
        ({"a": {}, "b": {"aliases": ["a"]}}, {}, "'a' is given twice"),
        ({"a": {"aliases": "b"}}, {}, "aliases must be a list"),
        ({"a": {"workers": -1}}, {}, "workers must be a whole number"),
        ({"a": {"model": ""}}, {}, "model must be a non-empty string"),
        ({" a": {}}, {}, "is not a model name"),
        ({"a" * 65: {}}, {}, "is not a model name"),
        ({"a": {"settings": {"VACE_PORT": 1}}}, {}, "VACE_PORT is not an engine setting"),
        ({"a": {"settings": {"VACE_MODEL": "x"}}}, {}, "cannot be set per model"),
        ({"a": {"settings": {"VACE_GPUS_PER_TASK": 2}}}, {}, "sizes every GPU group"),
        ({"a": {"settings": {"VACE_NUM_FRAMES": 80}}}, {}, "a: VACE_NUM_FRAMES=80: must be 4n+1"),
        ({"a": {"settings": {"dtype": "int8"}}}, {}, "a: VACE_DTYPE='int8'"),
        ({"a": {}}, {"served_model": "b"}, "VACE_SERVED_MODEL='b' is not in VACE_MODELS"),
        ({"a": {"preset": "turbo"}}, {}, "a: VACE_PRESET='turbo'"),
        ({"a": {"preset": "fast"}}, {}, "a: VACE_PRESET=fast needs VACE_DISTILL_LORA"),
    ],
)
def test_refused_at_load_with_one_line(
    registry: object, more: dict[str, object], message: str
) -> None:
    line = _refusal(registry, **more)
    assert message in line and "\n" not in line


def test_served_model_without_a_registry_is_refused() -> None:
    with pytest.raises(ValidationError, match="none: VACE_MODELS unset"):
        Settings(served_model="x")  # type: ignore[arg-type]


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VACE_MODELS", json.dumps(REGISTRY))
    monkeypatch.setenv("VACE_SERVED_MODEL", "small")
    settings = Settings()
    assert [e.name for e in settings.engine.served_models] == ["big", "small"]
    assert settings.claim_names() == ("small",)


def test_a_served_models_folder_is_checked_like_vace_model(tmp_path: Path) -> None:
    missing = f"{tmp_path}/nowhere"
    problem = _settings({"a": {"model": missing}}).model_folder_problem() or ""
    assert problem.startswith("VACE_MODELS: a: model=") and "does not exist" in problem


def test_worker_refuses_an_unserved_model_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VACE_MODELS", json.dumps(REGISTRY))
    command = ["worker", "--served-model", "nope", "--data-dir", str(tmp_path / "data")]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2
    assert "VACE_SERVED_MODEL='nope' is not in VACE_MODELS" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()  # refused before anything started
