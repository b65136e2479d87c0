"""Where training time goes, side by side in one process, on the default data and config.

    python benchmarks/throughput.py                       # default config (early, ResNet-18)
    python benchmarks/throughput.py fusion=intermediate throughput.batches=4
    python benchmarks/throughput.py trainer=gpu model.channels_last=true model.compile=true

A Hydra app of conf/throughput.yaml: the training job's config with its overrides, plus the
`throughput.*` options (batches, repeats, cold_samples, wall); its files go to the run dir.

Rows (each with its target and pass/fail):
  a. Lightning training loop vs a plain PyTorch loop: same model, batches, optimizer type, both
     in steady state (Lightning's second epoch; the plain loop's optimizer is warm) (>= 0.95)
  b. data loader samples/s, cold (decode + librosa) and warm (cache, default workers), vs the
     rate the model consumes samples in training (warm >= 5x)
  c. end-to-end epoch (Lightning, default callbacks, validation, checkpoint) vs pure compute of
     the same steps on synthetic in-memory tensors (>= 0.9)
  d. inference latency (batch 1) and throughput (batch 64), fp32 and bf16 (no target)
Rows a and c alternate the two sides `throughput.repeats` times and report the median of the
per-pair ratios, so a shared machine's noise hits both sides of a pair alike.
"""

from __future__ import annotations

import itertools
import logging
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import hydra
import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig

from mmfusion.cli.tool import CONFIG_DIR
from mmfusion.data.cache import decoded_split
from mmfusion.data.loading import available_cpus
from mmfusion.evaluation.markdown import markdown_table
from mmfusion.models.classifier import FusionClassifier

ROWS: list[tuple[str, str, str, str]] = []  # (measure, value, target, verdict)


class Clock:
    """Wall time on a GPU; this process's CPU time (all threads) on a CPU.

    A shared CPU machine's wall time mostly measures the other jobs; the CPU time a process
    spends is what its own work costs, so comparisons on CPU use it ("CPU-s").
    """

    def __init__(self) -> None:
        self.cpu = True

    def now(self) -> float:
        return time.process_time() if self.cpu else time.perf_counter()

    @property
    def rate(self) -> str:
        return "samples/CPU-s" if self.cpu else "samples/s"

    @property
    def unit(self) -> str:
        return "CPU-s" if self.cpu else "s"


CLOCK = Clock()


def paired_ratios(slow: list[float], fast: list[float]) -> list[float]:
    """fast / slow per repeat: the two sides of a pair ran back to back, so a shared machine's
    slow drifts cancel within a pair; the median over pairs ignores a pair that a burst hit."""
    return [f / s for f, s in zip(fast, slow, strict=True)]


def spread(ratios: list[float]) -> str:
    middle = statistics.median(ratios)
    return f"{middle:.3f} (median of {len(ratios)}; {min(ratios):.3f}-{max(ratios):.3f})"


def row(measure: str, value: str, target: str = "-", passed: bool | None = None) -> None:
    verdict = "info" if passed is None else ("PASS" if passed else "FAIL")
    ROWS.append((measure, value, target, verdict))
    print(f"  {measure}: {value}  [{target}] {verdict}", flush=True)


def build_model(cfg, datamodule) -> FusionClassifier:
    net = instantiate(cfg.fusion, num_classes=datamodule.num_classes)
    return instantiate(cfg.model, _partial_=True)(
        net=net, class_names=datamodule.class_names, decoding=datamodule.decoding.to_dict()
    )


def autocast(cfg):
    """The autocast the configured trainer precision implies, for the hand-written loops."""
    precision = str(cfg.trainer.precision)
    device = "cuda" if torch.cuda.is_available() and cfg.trainer.accelerator != "cpu" else "cpu"
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    return torch.autocast(device, dtype=dtype, enabled=precision.endswith("-mixed"))


def device_of(cfg) -> torch.device:
    gpu = torch.cuda.is_available() and cfg.trainer.accelerator != "cpu"
    return torch.device("cuda" if gpu else "cpu")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_train(model, batches, optimizer, cfg, device) -> float:
    """The hand-written loop: augment, forward, cross-entropy, backward, step. Seconds."""
    model.train()
    sync(device)
    start = CLOCK.now()
    for inputs, labels in batches:
        inputs = {m: x.to(device, non_blocking=True) for m, x in inputs.items()}
        labels = labels.to(device, non_blocking=True)
        if model.augment is not None:
            inputs = model.augment(inputs)
        with autocast(cfg):
            loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    sync(device)
    return CLOCK.now() - start


def plain_eval(model, batches, cfg, device) -> float:
    model.eval()
    sync(device)
    start = CLOCK.now()
    with torch.no_grad(), autocast(cfg):
        for inputs, labels in batches:
            inputs = {m: x.to(device) for m, x in inputs.items()}
            F.cross_entropy(model(inputs), labels.to(device))
    sync(device)
    return CLOCK.now() - start


class EpochTimer(pl.Callback):
    """Wall time from the first training batch's epoch start to the end of the epoch's hooks."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        sync(module.device)
        self._start = CLOCK.now()

    def on_train_epoch_end(self, trainer, module) -> None:
        sync(module.device)
        self.seconds.append(CLOCK.now() - self._start)


def lightning_fit(
    cfg, model, datamodule, train_batches, val_batches, callbacks, logger, epochs: int = 1
) -> float:
    """Seconds of the last of `epochs` epochs of a fresh Trainer."""
    timer = EpochTimer()
    trainer = instantiate(
        cfg.trainer,
        max_epochs=epochs,
        limit_train_batches=train_batches,
        limit_val_batches=val_batches,
        callbacks=[*callbacks, timer],  # last, so the epoch's other hooks are inside the timing
        logger=logger,
        enable_checkpointing=any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks),
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)
    return timer.seconds[-1]


def synthetic_batches(real_batches):
    """In-memory random tensors shaped like the real batches (no loader, no cache)."""
    generator = torch.Generator().manual_seed(0)
    out = []
    for inputs, labels in real_batches:
        fake = {m: torch.rand(x.shape, generator=generator) for m, x in inputs.items()}
        out.append((fake, torch.randint(0, int(labels.max()) + 1, labels.shape)))
    return out


def measure_inference(model, example, device, repeats: int) -> None:
    model.eval().to(device)
    for dtype in (torch.float32, torch.bfloat16):
        name = "fp32" if dtype == torch.float32 else "bf16"
        with torch.inference_mode(), torch.autocast(device.type, dtype, enabled=name == "bf16"):
            one = {m: x[:1].to(device) for m, x in example.items()}
            full = {m: x.to(device) for m, x in example.items()}
            model(one), model(full)  # warm-up
            latencies = []
            for _ in range(max(20, repeats * 10)):
                sync(device)
                start = time.perf_counter()
                model(one)
                sync(device)
                latencies.append(time.perf_counter() - start)
            best = float("inf")
            for _ in range(repeats + 1):
                sync(device)
                start = time.perf_counter()
                model(full)
                sync(device)
                best = min(best, time.perf_counter() - start)
        batch = len(next(iter(full.values())))
        latency_ms = statistics.median(latencies) * 1e3
        row(f"d. inference latency, batch 1, {name}", f"{latency_ms:.1f} ms")
        row(f"d. inference throughput, batch {batch}, {name}", f"{batch / best:.0f} samples/s")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {available_cpus()} CPUs available, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {gpu}"
    )


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="throughput")
def main(cfg: DictConfig) -> None:
    options = cfg.throughput
    warnings.filterwarnings("ignore")  # keep the output to the figures
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    work = Path(cfg.paths.output_dir)
    pl.seed_everything(cfg.seed, workers=True)
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}")
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = build_model(cfg, datamodule)
    device = device_of(cfg)
    CLOCK.cpu = device.type == "cpu" and not options.wall
    model.to(device)
    loader = datamodule.train_dataloader()
    # a whole epoch by default, so per-epoch costs (validation, checkpoint) weigh as in a real run
    batches = options.batches or len(loader)
    real = list(itertools.islice(loader, batches))
    samples = sum(len(labels) for _, labels in real)
    val_batches = len(datamodule.val_dataloader())
    print(
        f"config: fusion={cfg.fusion._target_.rsplit('.', 1)[1]} backbone={cfg.backbone.name} "
        f"modalities={list(cfg.modality.names)} image_size={cfg.data.decoding.image_size} "
        f"batch_size={cfg.data.batch_size} precision={cfg.trainer.precision}; "
        f"{batches} training batches ({samples} samples) and {val_batches} validation "
        f"batches per timing, {options.repeats} interleaved repeats; timings in {CLOCK.unit}",
        flush=True,
    )

    # a. Lightning loop vs the plain loop, interleaved, on the same batches
    optimizer = model.configure_optimizers()["optimizer"]
    plain_train(model, real[:1], optimizer, cfg, device)  # warm-up: allocator, kernels
    plain_s, lightning_s = [], []
    bar = cfg.callbacks.get("progress_bar")
    progress = [instantiate(bar)] if bar else []
    for _ in range(options.repeats):
        plain_s.append(plain_train(model, real, optimizer, cfg, device))
        fixed = _Fixed(datamodule, real)
        # the second epoch: the first pays for the fresh optimizer's state, which the plain
        # loop's reused optimizer already holds; both sides are then in steady state
        lightning_s.append(lightning_fit(cfg, model, fixed, batches, 0, progress, False, 2))
    plain_rate = samples / statistics.median(plain_s)
    lightning_rate = samples / statistics.median(lightning_s)
    row("a. training, plain PyTorch loop", f"{plain_rate:.1f} {CLOCK.rate}")
    row("a. training, mmfusion Lightning loop", f"{lightning_rate:.1f} {CLOCK.rate}")
    ratios = paired_ratios(lightning_s, plain_s)
    ratio = statistics.median(ratios)
    row("a. Lightning / plain", spread(ratios), ">= 0.95", ratio >= 0.95)

    # b. data loading: cold decode vs warm cache, against the training consumption rate
    consumption = max(plain_rate, lightning_rate)
    subset = datamodule.layout.samples("train", datamodule.modalities)[: options.cold_samples]
    # CPU time cannot see decode worker processes: decode in this process when timing CPU
    decode_workers = 1 if CLOCK.cpu else datamodule.decode_workers
    start = CLOCK.now()
    decoded_split(
        subset,
        datamodule.decoding,
        work / "cold-cache",
        decode_workers,
    )
    cold_rate = len(subset) / (CLOCK.now() - start)
    warm_s = float("inf")
    for _ in range(options.repeats + 1):
        start = CLOCK.now()
        warm_n = sum(len(labels) for _, labels in loader)
        warm_s = min(warm_s, CLOCK.now() - start)
    warm_rate = warm_n / warm_s
    row(
        f"b. loader cold (decode + librosa, {decode_workers} decode process(es))",
        f"{cold_rate:.0f} {CLOCK.rate} = {cold_rate / consumption:.2f}x consumption",
    )
    row(
        f"b. loader warm (cache, num_workers={loader.num_workers})",
        f"{warm_rate:.0f} {CLOCK.rate} = {warm_rate / consumption:.0f}x consumption",
        ">= 5x",
        warm_rate >= 5 * consumption,
    )

    # c. end-to-end epoch (default callbacks, validation, checkpoint) vs pure compute
    synthetic = synthetic_batches(real)
    val_real = list(datamodule.val_dataloader())
    synthetic_val = synthetic_batches(val_real)
    plain_eval(model, synthetic_val[:1], cfg, device)
    compute_s, e2e_s = [], []
    for repeat in range(options.repeats):
        compute_s.append(
            plain_train(model, synthetic, optimizer, cfg, device)
            + plain_eval(model, synthetic_val, cfg, device)
        )
        callbacks = [
            instantiate(c)
            for name, c in cfg.callbacks.items()
            if c and name != "lr_monitor"  # it needs a logger; the CSV logger stands in below
        ]
        for callback in callbacks:
            if isinstance(callback, pl.callbacks.ModelCheckpoint):
                callback.dirpath = str(work / f"checkpoints{repeat}")
        csv = pl.loggers.CSVLogger(work / "csv")
        e2e_s.append(lightning_fit(cfg, model, datamodule, batches, val_batches, callbacks, csv))
    compute_median = statistics.median(compute_s)
    row("c. pure compute, synthetic in-memory tensors", f"{compute_median:.2f} {CLOCK.unit}")
    row(
        "c. end-to-end epoch (loader, loop, val, metrics, checkpoint)",
        f"{statistics.median(e2e_s):.2f} {CLOCK.unit}",
    )
    ratios = paired_ratios(e2e_s, compute_s)
    row("c. compute / end-to-end", spread(ratios), ">= 0.9", statistics.median(ratios) >= 0.9)

    # d. inference
    example = {m: x for m, x in val_real[0][0].items()}
    measure_inference(model, example, device, options.repeats)
    if not torch.cuda.is_available():
        row("GPU (bf16, channels_last, compile on/off)", "not measured on GPU")

    print(f"\nload average at end {os.getloadavg()[0]:.1f}; machine: {machine()}\n")
    print(markdown_table(["measure", "value", "target", "result"], ROWS))
    failed = [r for r in ROWS if r[3] == "FAIL"]
    print(f"\n{'all targets met' if not failed else f'{len(failed)} target(s) missed'}")


class _Batches:
    """One iterable of batches (Lightning reads a bare list as several data loaders)."""

    def __init__(self, batches) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _Fixed(pl.LightningDataModule):
    """The data module's val/test, but training on a fixed list of batches (row a)."""

    def __init__(self, datamodule, batches) -> None:
        super().__init__()
        self.inner, self.batches = datamodule, batches

    def train_dataloader(self):
        return _Batches(self.batches)

    def val_dataloader(self):
        return self.inner.val_dataloader()


if __name__ == "__main__":
    main()
