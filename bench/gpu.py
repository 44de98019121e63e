"""GPU memory and time of the real-size models, with random weights (no download).

    # no GPU needed: the rows, parameter counts, weight memory and FLOPs (meta device)
    PYTHONPATH=$PWD .venv/bin/python -m bench.gpu --plan [--rows default] [--write-docs]
    # one row, settings as flat overrides (unknown settings fail, never silently ignored)
    python -m bench.gpu --model vace-14b --set VACE_PRESET=fast [--max-steps 4]
    # a matrix of rows within a time budget (what docs/gpu.md#4-benchmarking runs on a GPU)
    python -m bench.gpu --rows device --budget-s 500 --results $OUT/gpu.json
    # back here: store a GPU run's rows (kept by row, newest wins) and re-render the docs
    python -m bench.gpu --merge <files_at>/gpu.json --write-docs

Each row runs in a child process (`--child`), so one row's out-of-memory, compile caches or
peak-memory counters never reach the next. A matrix row naming a setting this build does not
have is skipped with the reason printed and recorded; `--strict` makes that an error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import gpu_docs
from .gpu_arch import ARCHS, component_sizes, write_random_lora
from .gpu_flops import (
    activation_floor_bytes,
    counted_forward_flops,
    forward_flops,
    latent_tokens,
)
from .gpu_run import BenchError, parse_overrides, run_row, unknown_settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "bench" / "results" / "gpu.json"
ROW_TAG = "BENCH_ROW "
REAL = ("vace-1.3b", "vace-14b", "vace-fun-a14b")
# (model, settings, steps to run at most). The `device` rows fit one 10-minute command on an
# H200, most important first (the budget cuts from the end): issue #10's targets, then the
# switches once each on 1.3B.
Row = tuple[str, list[str], int]
ROWS: dict[str, list[Row]] = {
    "device": [
        ("vace-1.3b", [], 3),
        ("vace-1.3b", ["VACE_PRESET=fast"], 8),
        ("vace-14b", ["VACE_PRESET=fast"], 8),
        ("vace-14b", [], 2),
        ("vace-1.3b", ["VACE_ATTENTION_BACKEND=_native_cudnn"], 3),
        ("vace-1.3b", ["VACE_COMPILE=true"], 3),
        ("vace-1.3b", ["VACE_PRESET=balanced"], 4),
        ("vace-fun-a14b", ["VACE_PRESET=fast"], 8),
    ],
}
ROWS["default"] = [
    *ROWS["device"],
    ("vace-1.3b", ["VACE_ATTENTION_BACKEND=flash"], 3),
    ("vace-1.3b", ["VACE_ATTENTION_BACKEND=_flash_3"], 3),
    ("vace-1.3b", ["VACE_ATTENTION_BACKEND=sage"], 3),
    ("vace-1.3b", ["VACE_CACHE=taylorseer"], 4),
    ("vace-1.3b", ["VACE_LAYERWISE_CASTING=float8_e4m3fn"], 3),
    ("vace-14b", ["VACE_PRESET=fast", "VACE_OFFLOAD=model"], 8),
    ("vace-14b", ["VACE_PRESET=fast", "VACE_LAYERWISE_CASTING=float8_e4m3fn"], 8),
    ("vace-fun-a14b", [], 2),
]
# Rough seconds a row needs on an H200 (child start, build, run): only for not starting a row
# the budget would kill anyway. Never reported as a measurement.
_MIN_START_S = {"tiny": 10.0, "vace-1.3b": 45.0, "vace-14b": 120.0, "vace-fun-a14b": 150.0}
ROWS["smoke"] = [("tiny", ["VACE_NUM_INFERENCE_STEPS=3"], 2)]  # the CPU smoke test's


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f}"


def computed_tables(models: tuple[str, ...] = REAL, *, check: bool = False) -> str:
    """Parameter counts, weight memory and FLOPs per step, all computed without a GPU.
    `check` also counts each forward's FLOPs on the meta device and refuses a mismatch."""
    size_lines = [
        "| model | transformer(s) params | UMT5-XXL params | VAE params | weights GiB, "
        "all resident (bf16; VAE fp32) | largest component GiB (model offload) | "
        "transformer activations GiB, lower bound |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    flop_lines = [
        "| model | size | latent tokens | TFLOPs / forward | TFLOPs / step, CFG (2 forwards) "
        "| TFLOPs / step, guidance 1 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key in models:
        arch = ARCHS[key]
        sizes = component_sizes(arch)
        experts = [v for k, v in sizes.items() if k.startswith("transformer")]
        params = " + ".join(f"{v['params'] / 1e9:.2f} B" for v in experts)
        total = sum(v["bytes"] for v in sizes.values())
        largest = max(v["bytes"] for v in sizes.values())
        size_lines.append(
            f"| {arch.title} | {params} | {sizes['text_encoder']['params'] / 1e9:.2f} B | "
            f"{sizes['vae']['params'] / 1e6:.0f} M | {_gib(total)} | {_gib(largest)} | "
            f"{_gib(activation_floor_bytes(arch.transformer, arch.width, arch.height, 81))} |"
        )
        flops = forward_flops(arch.transformer, arch.width, arch.height, arch.num_frames, 512)
        if check:
            counted = counted_forward_flops(
                arch.transformer, arch.width, arch.height, arch.num_frames, 512
            )
            if counted != flops:
                raise BenchError(f"{key}: formula {flops} != counted {counted} FLOPs")
        tokens = latent_tokens(arch.transformer, arch.width, arch.height, arch.num_frames)
        flop_lines.append(
            f"| {arch.title} | {arch.width}x{arch.height}x{arch.num_frames} | {tokens} | "
            f"{flops / 1e12:.0f} | {2 * flops / 1e12:.0f} | {flops / 1e12:.0f} |"
        )
    return "\n".join(
        [
            "### Computed without a GPU (meta device)",
            "",
            "Weights at the server's load dtypes (engine/loader.py: bf16 on CUDA, the modules "
            "diffusers keeps in float32 in float32, the VAE in float32); activations come on "
            "top and are only known by measuring (peak GiB above); the lower bound counts "
            "what diffusers' VACE forward must hold at once (every VACE layer's hint, the "
            "hidden and control states, one FFN intermediate; bench/gpu_flops.py).",
            "",
            *size_lines,
            "",
            "Matmul FLOPs of the transformer (bench/gpu_flops.py; the formula equals torch's "
            "FLOP counter on the diffusers module), 512 text tokens; a two-expert model runs "
            "one expert per step.",
            "",
            *flop_lines,
            "",
        ]
    )


def _plan_rows(rows: list[Row]) -> list[tuple[str, str | None]]:
    plan = []
    for model, pairs, _ in rows:
        missing = unknown_settings(pairs)
        reason = f"{', '.join(missing)} not a setting of this build" if missing else None
        plan.append((gpu_docs.row_id(model, pairs), reason))
    return plan


def write_docs(rows: list[Row], results_path: Path, docs: Path = DOCS) -> None:
    section = gpu_docs.render_section(
        _plan_rows(rows), gpu_docs.load_results(results_path), computed_tables()
    )
    gpu_docs.replace_section(docs, section)


def _child_main(
    model: str, pairs: list[str], max_steps: int, peak: float | None, warmup: bool
) -> int:
    """Runs one row in this process; prints its JSON after ROW_TAG."""
    parse_overrides(pairs)  # an unknown setting fails before the random LoRA is written
    extra: list[str] = []
    if "VACE_PRESET=fast" in pairs and not any(p.startswith("VACE_DISTILL_LORA=") for p in pairs):
        lora = Path(tempfile.gettempdir()) / f"bench-random-lora-{model}.safetensors"
        extra = [f"VACE_DISTILL_LORA={write_random_lora(ARCHS[model], lora)}"]
    report = run_row(model, pairs + extra, max_steps=max_steps, peak=peak, warmup=warmup)
    report["settings"] = pairs
    report["random_distill_lora"] = bool(extra)
    print(ROW_TAG + json.dumps(report), flush=True)
    return 0


def _spawn(row: Row, peak: float | None, timeout: float, warmup: bool) -> dict[str, Any]:
    model, pairs, max_steps = row
    command = [sys.executable, "-m", "bench.gpu", "--child", model, "--max-steps", str(max_steps)]
    command += [arg for pair in pairs for arg in ("--set", pair)]
    if peak is not None:
        command += ["--peak-tflops", str(peak)]
    if warmup:
        command.append("--warmup")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=None if timeout == float("inf") else timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {timeout:.0f} s (time budget)"}
    sys.stderr.write(done.stderr[-4000:])
    for line in done.stdout.splitlines():
        if line.startswith(ROW_TAG):
            return dict(json.loads(line[len(ROW_TAG) :]))
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {done.returncode}: {last[:300]}"}


def run_matrix(
    rows: list[Row],
    results_path: Path,
    *,
    budget_s: float,
    peak: float | None,
    strict: bool,
    warmup: bool = False,
) -> dict[str, dict[str, Any]]:
    """Runs each row in a child process until the budget is spent; stores each result as it
    arrives (so a killed run keeps what it measured). Returns the stored results."""
    results = gpu_docs.load_results(results_path)
    began = time.monotonic()
    for row in rows:
        rid = gpu_docs.row_id(row[0], row[1])
        missing = unknown_settings(row[1])
        if missing:
            message = f"SKIPPED {rid}: {', '.join(missing)} not a setting of this build"
            if strict:
                raise BenchError(message)
            print(message, file=sys.stderr, flush=True)
            continue
        left = budget_s - (time.monotonic() - began)
        if left < _MIN_START_S[row[0]]:
            print(f"SKIPPED {rid}: {left:.0f} s of the budget left", file=sys.stderr, flush=True)
            continue
        print(f"RUN {rid}", file=sys.stderr, flush=True)
        result = {"model": row[0], "settings": row[1]} | _spawn(row, peak, left, warmup)
        results[rid] = result
        gpu_docs.save_results(results_path, results)
        print(f"DONE {rid}: {json.dumps(result)[:400]}", file=sys.stderr, flush=True)
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--plan", "--dry-run", action="store_true", help="list rows, computed sizes"
    )
    parser.add_argument("--rows", choices=sorted(ROWS), help="run (or plan) a matrix of rows")
    parser.add_argument("--model", choices=sorted(ARCHS), help="run one row of this model")
    parser.add_argument("--set", action="append", default=[], metavar="VACE_NAME=value")
    parser.add_argument("--max-steps", type=int, default=3, help="denoising steps run at most")
    parser.add_argument("--budget-s", type=float, default=float("inf"), help="matrix time budget")
    parser.add_argument("--warmup", action="store_true", help="untimed 1-step run first")
    parser.add_argument("--peak-tflops", type=float, help="bf16 peak of an unlisted GPU")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--write-docs", action="store_true", help="rewrite its docs section")
    parser.add_argument("--docs", type=Path, default=DOCS, help="default docs/benchmarks.md")
    parser.add_argument("--merge", type=Path, help="add a GPU run's results file to --results")
    parser.add_argument("--strict", action="store_true", help="unknown settings stop a matrix")
    parser.add_argument("--child", metavar="MODEL", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    import diffusers

    diffusers.utils.logging.set_verbosity_error()  # the deliberate fp32-kept casts warn
    args = _parser().parse_args(argv)
    try:
        if args.child:
            return _child_main(args.child, args.set, args.max_steps, args.peak_tflops, args.warmup)
        rows = ROWS[args.rows or "default"]
        if args.model:
            parse_overrides(args.set)  # fail here, clearly, before any child starts
            rows = [(args.model, args.set, args.max_steps)]
        if args.merge:
            merged = gpu_docs.merge_results(
                gpu_docs.load_results(args.results), gpu_docs.load_results(args.merge)
            )
            gpu_docs.save_results(args.results, merged)
        elif args.plan:
            for rid, reason in _plan_rows(rows):
                print(f"{rid:60} {reason or 'runnable'}")
            print(computed_tables(check=True))
        elif args.model or args.rows:
            run_matrix(
                rows, args.results, budget_s=args.budget_s, peak=args.peak_tflops,
                strict=args.strict, warmup=args.warmup,
            )  # fmt: skip
        if args.write_docs:
            write_docs(ROWS["default"], args.results, args.docs)
    except BenchError as exc:
        print(f"bench.gpu: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
