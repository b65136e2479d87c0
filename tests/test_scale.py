"""Speed and scale: no decoding after setup, bf16 on CPU, DDP under Hydra gives one run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import librosa
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient
from PIL import Image

from conftest import decoding, folder_job, make_tree, run_cli, run_ok
from mmfusion.cli.train import train
from mmfusion.data.datamodule import MultimodalDataset
from mmfusion.data.loading import auto_workers, collate_batch, loader_options, resolve_workers
from mmfusion.errors import ConfigError

TINY = [
    "backbone=simple_cnn",
    "data.decoding.image_size=16",
    "data.batch_size=4",
    "data.decode_workers=1",
]
TINY_SYNTHETIC = [
    *TINY,
    "data.layout.per_class={train: 4, valid: 2, test: 2}",
    "data.layout.image_size=32",
]


class DecodeSpy:
    """Counts real decoder calls (image open, audio load, librosa features) and passes them on."""

    TARGETS = (
        (Image, "open"),
        (librosa, "load"),
        (librosa.feature, "melspectrogram"),
        (librosa.feature, "mfcc"),
    )

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: Counter[str] = Counter()
        for owner, name in self.TARGETS:
            monkeypatch.setattr(owner, name, self._counting(name, getattr(owner, name)))

    def _counting(self, name, real):
        def wrapper(*args, **kwargs):
            self.calls[name] += 1
            return real(*args, **kwargs)

        return wrapper


class CallsPerEpoch(pl.Callback):
    def __init__(self, spy: DecodeSpy) -> None:
        self.spy, self.per_epoch, self._start = spy, [], 0

    def on_train_epoch_start(self, trainer, module) -> None:
        self._start = self.spy.calls.total()

    def on_validation_epoch_end(self, trainer, module) -> None:
        if not trainer.sanity_checking:
            self.per_epoch.append(self.spy.calls.total() - self._start)


@pytest.mark.slow
def test_epochs_after_setup_do_no_decoding_and_no_librosa(compose_cfg, monkeypatch):
    cfg = compose_cfg(*TINY_SYNTHETIC, "logger=none")
    spy = DecodeSpy(monkeypatch)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    first_setup = dict(spy.calls)
    assert first_setup["open"] > 0 and first_setup["melspectrogram"] > 0  # the spy sees decoding
    net = instantiate(cfg.fusion, num_classes=datamodule.num_classes)
    model = instantiate(cfg.model, _partial_=True)(
        net=net, class_names=datamodule.class_names, decoding=datamodule.decoding.to_dict()
    )
    counter = CallsPerEpoch(spy)
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[counter],
    )
    trainer.fit(model, datamodule=datamodule)
    assert counter.per_epoch == [0, 0, 0]
    assert dict(spy.calls) == first_setup


def test_batch_reads_equal_item_reads_in_sampler_order(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "ct": rng.integers(0, 255, (10, 8, 8), dtype=np.uint8),
        "cough": rng.standard_normal((10, 8, 8)).astype(np.float16),
    }
    np.save(tmp_path / "ct.npy", arrays["ct"])
    arrays["ct"] = np.load(tmp_path / "ct.npy", mmap_mode="r")  # as served from the cache
    samples = [type("S", (), {"label": i % 3})() for i in range(10)]
    dataset = MultimodalDataset(arrays, samples)
    order = [7, 2, 9, 0]
    inputs, labels = collate_batch(dataset.__getitems__(order))
    items = torch.utils.data.default_collate([dataset[i] for i in order])
    assert torch.equal(labels, items[1])
    for modality in arrays:
        assert inputs[modality].shape == (4, 1, 8, 8) and inputs[modality].is_contiguous()
        assert torch.equal(inputs[modality], items[0][modality])


def test_loader_defaults_fit_the_machine():
    assert auto_workers(2) == 0 and auto_workers(4) == 0
    assert auto_workers(16) == 4 and auto_workers(128) == 8
    assert resolve_workers(3) == 3
    with pytest.raises(ConfigError, match="data.num_workers"):
        resolve_workers("many")
    assert loader_options(2) == {
        "num_workers": 2,
        "persistent_workers": True,
        "pin_memory": torch.cuda.is_available(),
        "prefetch_factor": 4,
    }
    assert loader_options(0)["persistent_workers"] is False


def test_channels_last_and_compile_options_keep_the_checkpoint_format(compose_cfg):
    cfg = compose_cfg("backbone=simple_cnn", "model.channels_last=true", "model.compile=true")
    net = instantiate(cfg.fusion, num_classes=2)
    model = instantiate(cfg.model, _partial_=True)(
        net=net,
        class_names=["a", "b"],
        decoding=decoding(8).fitted({m: (0.5, 0.2) for m in cfg.modality.names}).to_dict(),
    )
    conv = model.net.encoder.body.features[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(not k.startswith("net._orig_mod") for k in model.state_dict())
    normalised = model.normalise({"ct": torch.rand(2, 3, 8, 8)})
    assert normalised["ct"].is_contiguous(memory_format=torch.channels_last)
    assert model.net._compiled_call_impl is not None  # torch.compile wraps forward in place


@pytest.mark.slow
def test_bf16_mixed_trains_on_cpu(compose_cfg, tmp_path):
    tree = make_tree(tmp_path / "tree")
    cfg = compose_cfg(
        "data=folder",
        f"data.root={tree}",
        *TINY,
        "logger=none",
        "trainer.accelerator=cpu",
        "trainer.precision=bf16-mixed",
        "trainer.max_epochs=2",
        # the post-test explanations and robustness passes run outside the trainer's autocast
        "callbacks.explain=null",
        "callbacks.robustness=null",
    )
    conv_dtypes = set()

    def record(module, args, output):
        if isinstance(module, torch.nn.Conv2d):
            conv_dtypes.add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        train(cfg)
    finally:
        handle.remove()
    assert conv_dtypes == {torch.bfloat16}
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert np.isfinite(metrics["train/loss"]) and np.isfinite(metrics["test/loss"])


def single_run(workdir: Path) -> tuple[dict, Path]:
    """(the one MLflow run's metric keys and run id, the one run dir) of a workdir."""
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("mmfusion")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run_dirs = list((workdir / "outputs" / "train" / "runs").iterdir())
    assert len(run_dirs) == 1
    return runs[0].data.metrics, run_dirs[0]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_is_one_run_like_a_single_process_run(tmp_path):
    tree = make_tree(tmp_path / "tree")
    args = folder_job(tree, *TINY, "trainer.max_epochs=2")
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    for workdir, extra in (
        (single, []),
        (ddp, ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]),
    ):
        workdir.mkdir()
        run_ok([*args, *extra], workdir)
    single_metrics, _ = single_run(single)
    ddp_metrics, run_dir = single_run(ddp)
    assert set(ddp_metrics) == set(single_metrics)
    assert (run_dir / "train_ddp_process_1.log").is_file()  # rank 1 ran in rank 0's run dir
    predictions = (run_dir / "test_predictions.csv").read_text().strip().splitlines()
    assert len(predictions) == 1 + 4  # header + every test patient exactly once


@pytest.mark.slow
def test_multirun_with_ddp_is_refused_with_the_alternative(tmp_path):
    tree = make_tree(tmp_path / "tree", per_split={"train": 2, "valid": 1, "test": 1})
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    args = folder_job(tree, *TINY, "logger=none", *ddp, "fusion=early,intermediate", multirun=True)
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("mmfusion: error: multirun (-m) with a multi-process trainer")
    assert "hydra/launcher=slurm" in last
