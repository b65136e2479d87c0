"""`python -m mmfusion`: fit, test on the best checkpoint, log everything, print a summary."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import lightning.pytorch as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mmfusion.cli.tool import CONFIG_DIR, one_line_errors
from mmfusion.evaluation.predictions import print_summary
from mmfusion.tracking.loggers import (
    build_loggers,
    final_status,
    log_artifact,
    mlflow_loggers,
    remember_runs,
)
from mmfusion.training.distributed import leave_process_group, prepare_launch
from mmfusion.training.resume import checkpoint_to_resume, resume_target
from mmfusion.training.signals import sigterm_as_interrupt

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> float:
    """Wire data, model, callbacks, loggers and trainer; return the monitored metric's best."""
    with sigterm_as_interrupt():
        return _train(cfg)


def _train(cfg: DictConfig) -> float:
    pl.seed_everything(cfg.seed, workers=True)
    run_config = OmegaConf.to_container(cfg, resolve=True)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    net = instantiate(cfg.fusion, num_classes=datamodule.num_classes)
    # a partial, so that the plain-dict run_config is passed through, not instantiated
    model = instantiate(cfg.model, _partial_=True)(
        net=net,
        class_names=datamodule.class_names,
        decoding=datamodule.decoding.to_dict(),
        run_config=run_config,
    )
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c]
    out = Path(cfg.paths.output_dir)
    resuming = resume_target(cfg.resume, cfg.ckpt_path) is not False
    loggers, reopened = build_loggers(cfg.logger, out, resuming)
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    with final_status(loggers):  # from here on, the MLflow run ends FINISHED / KILLED / FAILED
        remember_runs(loggers, out)
        if not reopened:  # a reopened MLflow run has its params already
            for logger in loggers:
                logger.log_hyperparams(run_config)
        return _fit_and_test(cfg, trainer, model, datamodule, callbacks, loggers)


def _fit_and_test(cfg, trainer, model, datamodule, callbacks, loggers) -> float:
    ckpt_path = checkpoint_to_resume(cfg.resume, cfg.ckpt_path, cfg.paths.output_dir)
    prepare_launch(trainer)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    trainer = leave_process_group(trainer, callbacks, loggers)  # DDP: rank 0 goes on alone
    if trainer is None:
        return metrics.get(cfg.monitor, float("nan"))
    if cfg.test:
        best_path = trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path
        trainer.test(model, datamodule=datamodule, ckpt_path=best_path or None)
        metrics |= {k: float(v) for k, v in trainer.callback_metrics.items()}
    if trainer.is_global_zero:
        _write_artifacts(cfg, trainer, model, datamodule, loggers, metrics)
    best = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    return float(best) if best is not None else metrics.get(cfg.monitor, float("nan"))


def _write_artifacts(cfg, trainer, model, datamodule, loggers, metrics) -> None:
    """Run-dir files, mirrored to MLflow: metrics, config, best checkpoint.

    The test split's evaluation artifacts come from the callbacks (`callbacks.evaluation`).
    """
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    files = [out / "metrics.json"]
    if datamodule.skipped:
        (out / "bad_files.json").write_text(json.dumps(datamodule.skipped, indent=2))
        files.append(out / "bad_files.json")
    for path in files:
        log_artifact(loggers, path)
    if (out / ".hydra").is_dir():
        log_artifact(loggers, out / ".hydra", "hydra")
    checkpoint = trainer.checkpoint_callback
    if checkpoint and checkpoint.best_model_path:
        log_artifact(loggers, Path(checkpoint.best_model_path), "checkpoints")
    run = next(iter(mlflow_loggers(loggers)), None)
    print_summary(
        {k: v for k, v in metrics.items() if k.startswith(("test/", "val/"))},
        run.run_id if run else None,
        out,
        run._tracking_uri if run else None,
    )


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@one_line_errors("mmfusion")
def main(cfg: DictConfig) -> float:
    return train(cfg)


if __name__ == "__main__":
    main()
