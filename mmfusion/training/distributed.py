"""Lightning DDP under Hydra: one run dir, one MLflow run, an exact test on rank 0.

Lightning's DDP (`trainer=ddp`) re-launches the command line once per extra local device,
adding `hydra.run.dir=<rank 0's run dir>`; children find the data and the decode cache that
rank 0 prepared, and their loggers are no-ops (MLFlowLogger is rank-zero only).
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import read_write

from mmfusion.errors import ConfigError


def launches_processes(trainer: pl.Trainer) -> bool:
    """True when this trainer will re-run the command to start its other ranks."""
    environment = getattr(trainer.strategy, "cluster_environment", None)
    return trainer.world_size > 1 and not (
        environment is not None and environment.creates_processes_externally
    )


def prepare_launch(trainer: pl.Trainer) -> None:
    """Refuse local multirun x DDP; pin the run dir the children will be given to this one's."""
    if not HydraConfig.initialized() or not launches_processes(trainer):
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        raise ConfigError(
            "multirun (-m) with a multi-process trainer is not supported locally: Lightning's "
            "DDP re-launches the command line, which would re-run the whole sweep; run each job "
            "as a single run (e.g. a shell loop), or sweep on SLURM with hydra/launcher=slurm, "
            "where SLURM starts one process per device"
        )
    # `${now:...}` in hydra.run.dir would be re-evaluated when Lightning builds the children's
    # command line and could name a second dir; give them the resolved one
    with read_write(hydra_cfg.run):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir


def leave_process_group(trainer: pl.Trainer, callbacks: list, loggers: list) -> pl.Trainer | None:
    """After a multi-process fit: end the process group; rank 0 gets a one-device trainer.

    Testing on one device evaluates every test sample exactly once (a DistributedSampler pads
    and shards), so the test metrics, confusion matrix and predictions file are exact. Other
    ranks get None: their work is done.
    """
    if trainer.world_size == 1:
        return trainer
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if not trainer.is_global_zero:
        return None
    return pl.Trainer(
        accelerator=trainer.accelerator,
        devices=1,
        num_nodes=1,
        precision=trainer.precision,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=trainer.default_root_dir,
    )
