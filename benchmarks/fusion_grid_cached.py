"""The fusion comparison grid on frozen encoders and cached embeddings: how long it takes.

    nice -n 10 python benchmarks/fusion_grid_cached.py [--workdir DIR] [--epochs 10]

Every post-encoder fusion (intermediate, late, attention, gated, tensor, cross_attention) x 3
seeds, all three modalities, on the default synthetic data, with the fusion_comparison
experiment's settings (small CNN, 32 px, 10 epochs, no early stopping, no robustness / logged
model), each job's encoders loaded with `encoder.<m>.init_from` and frozen
(`training.freeze_encoders=true`), so that fusion + head train on cached embeddings. Three
commands, run as a user types them, each timed on its own:

1. source: one intermediate-fusion run whose encoders the grid starts from (our machines reach
   no hub, so a run of ours stands in for pretrained encoders: `init_from` is the same path);
2. cache: one short job per kind of embedding (pooled features, and cross-attention's tokens)
   builds every split's embeddings (their build seconds are read from the runs' MLflow tags);
3. grid: the 18 jobs as one multirun, after the cache; every job must report a cache hit.

Prints one line per step (wall seconds) and the grid's test accuracy per fusion (mean over the
seeds). Data generation and decoding happen in step 1, so steps 2 and 3 time what they name.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FUSIONS = ("intermediate", "late", "attention", "gated", "tensor", "cross_attention")
SEEDS = (1, 2, 3)
COMMON = [
    "backbone=simple_cnn",
    "modality=all",
    "callbacks.early_stopping=null",
    "callbacks.robustness=null",
    "callbacks.log_model=null",
]


def mmfusion(args: list[str], cwd: Path) -> float:
    """Run `python -m mmfusion ARGS` in `cwd`; its wall seconds (stops on failure)."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "mmfusion", *args], cwd=cwd, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"python -m mmfusion {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return seconds


def runs_of(cwd: Path, experiment_runs_after: float) -> list:
    """The finished MLflow runs started after the given time (seconds since the epoch)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{cwd}/mlflow.db")
    found = []
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], max_results=1000):
            tags = run.data.tags
            if run.info.start_time / 1000 >= experiment_runs_after and "embedding_cache" in tags:
                found.append(run)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new temp folder")
    parser.add_argument("--epochs", type=int, default=10, help="of each grid job")
    parser.add_argument(
        "--source-epochs", type=int, default=2, help="of the run the encoders come from"
    )
    options = parser.parse_args()
    cwd = options.workdir or Path(tempfile.mkdtemp(prefix="fusion_grid_cached-"))
    cwd.mkdir(parents=True, exist_ok=True)
    epochs = f"trainer.max_epochs={options.epochs}"
    print(f"work dir: {cwd}", flush=True)

    source = cwd / "source"
    seconds = mmfusion(
        [*COMMON, "fusion=intermediate", "seed=0", f"trainer.max_epochs={options.source_epochs}",
         "callbacks.explain=null", f"hydra.run.dir={source}"],
        cwd,
    )  # fmt: skip
    print(f"1. source run (data generation, decoding, one fit): {seconds:.1f} s", flush=True)

    frozen = [f"encoder.{m}.init_from={source}" for m in ("ct", "cxr", "cough")]
    frozen.append("training.freeze_encoders=true")
    started = time.time()
    seconds = mmfusion(
        ["-m", *COMMON, *frozen, "fusion=intermediate,cross_attention", "seed=1",
         "trainer.max_epochs=1", "test=false", "callbacks.explain=null"],
        cwd,
    )  # fmt: skip
    built = runs_of(cwd, started)
    build = sum(float(r.data.tags.get("embedding_cache.build_s", 0)) for r in built)
    print(
        f"2. embedding cache build: {build:.1f} s of encoder passes "
        f"({seconds:.1f} s wall for the {len(built)} jobs that built it)",
        flush=True,
    )

    started = time.time()
    seconds = mmfusion(
        ["-m", *COMMON, *frozen, f"fusion={','.join(FUSIONS)}",
         f"seed={','.join(map(str, SEEDS))}", epochs],
        cwd,
    )  # fmt: skip
    grid = runs_of(cwd, started)
    misses = [r for r in grid if r.data.tags.get("embedding_cache") != "used"]
    rebuilt = [r for r in grid if float(r.data.tags.get("embedding_cache.build_s", 0)) > 0]
    print(
        f"3. grid after the cache: {len(FUSIONS)} fusions x {len(SEEDS)} seeds = {len(grid)} "
        f"jobs in {seconds:.1f} s wall ({seconds / 60:.2f} min); cache not used: {len(misses)}, "
        f"rebuilt: {len(rebuilt)}",
        flush=True,
    )
    for fusion in FUSIONS:
        accuracies = [  # run names: <fusion>-<backbone>-<modalities>
            r.data.metrics["test/acc"] for r in grid if r.info.run_name.startswith(f"{fusion}-")
        ]
        if accuracies:
            spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
            print(f"   {fusion}: test/acc {statistics.mean(accuracies):.3f} ± {spread:.3f}")


if __name__ == "__main__":
    main()
