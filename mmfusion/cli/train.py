"""`python -m mmfusion`: fit, test on the best checkpoint, log everything, print a summary.

A run's phases (fit, test with its evaluation and explanations, artifacts) are recorded in its
run dir when done (`training.progress`); `resume=...` reopens its MLflow run and does only
the rest. SIGTERM / SIGINT in any phase: run KILLED, exit 143 / 130 (`runtime.signals`).

torch, Lightning and MLflow are imported when the job starts, not with this module: the
preflight checks (`cli.preflight`, a Hydra callback) then answer within seconds.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mmfusion.cli.tool import hydra_app

# torch, Lightning and MLflow are imported inside the functions, so that `--help` answers at once
log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> float:
    """Wire data, model, callbacks, loggers and trainer; return the monitored metric's best."""
    from mmfusion.runtime.signals import stop_on_signals

    with stop_on_signals():
        return _train(cfg)


def _train(cfg: DictConfig) -> float:
    import lightning.pytorch as pl

    from mmfusion.tracking.loggers import build_loggers, final_status, remember_runs, set_tags
    from mmfusion.training.progress import Progress
    from mmfusion.training.resume import resume_target
    from mmfusion.training.stages import EncoderFinetuning, train_encoders_alone

    pl.seed_everything(cfg.seed, workers=True)
    sources = resolve_init_from(cfg)
    run_config = OmegaConf.to_container(cfg, resolve=True)
    datamodule, model = data_and_model(cfg, run_config)
    out = Path(cfg.paths.output_dir)
    resuming = resume_target(cfg.resume, cfg.ckpt_path) is not False
    progress = Progress(out, resuming)
    finetuning = EncoderFinetuning(
        cfg.training.freeze_encoders,
        cfg.training.unfreeze_at_epoch,
        cfg.training.unfreeze_lr_factor,
    )
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c]
    callbacks += [finetuning, progress.callback()]
    loggers, reopened = build_loggers(cfg.logger, out, resuming)
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    with final_status(loggers):  # from here on, the MLflow run ends FINISHED / KILLED / FAILED
        remember_runs(loggers, out)
        if not reopened:  # a reopened MLflow run has its params already
            for logger in loggers:
                logger.log_hyperparams(run_config)
            set_tags(loggers, {f"init_from.{m}": s for m, s in sources.items()})
            if cfg.training.encoder_epochs:  # stage 1 (a resumed run has it in its checkpoint)
                train_encoders_alone(cfg, model, datamodule, loggers, out)
        finetuning.mark(model)
        return _phases(cfg, trainer, model, datamodule, callbacks, loggers, progress)


def data_and_model(cfg: DictConfig, run_config: dict | None):
    """The run's datamodule, set up for fit, and its model (encoders + fusion + head)."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    # the network first: its encoders fix parts of their modality's decoding (pretrained
    # normalisation, torchxrayvision's size and crop, the decoding of an init_from run)
    net = instantiate(cfg.fusion, num_classes=len(datamodule.classes()))
    datamodule.for_encoders(net.input_specs())
    datamodule.setup("fit")
    # a partial, so that the plain-dict run_config is passed through, not instantiated
    model = instantiate(cfg.model, _partial_=True)(
        net=net,
        class_names=datamodule.class_names,
        decoding=datamodule.decoding.to_dict(),
        run_config=run_config,
    )
    return datamodule, model


def _phases(cfg, trainer, model, datamodule, callbacks, loggers, progress) -> float:
    """Fit, test, artifacts: each one not done yet, each recorded when done."""
    from mmfusion.training.distributed import leave_process_group
    from mmfusion.training.progress import continue_logging_at

    fit = progress.get("fit")
    if fit and fit.get("max_epochs") != cfg.trainer.max_epochs:  # resumed to train longer
        progress.forget()
        fit = None
    if fit is None:
        fit = _fit(cfg, trainer, model, datamodule, loggers, progress)
    else:
        continue_logging_at(trainer, fit)
    metrics = dict(fit["metrics"])
    trainer = leave_process_group(trainer, callbacks, loggers)  # DDP: rank 0 goes on alone
    if trainer is None:
        return metrics.get(cfg.monitor, float("nan"))
    if cfg.test:
        test = progress.get("test")
        if test is None:
            trainer.test(model, datamodule=datamodule, ckpt_path=fit["best_model_path"] or None)
            test = {"metrics": {k: float(v) for k, v in trainer.callback_metrics.items()}}
            progress.done("test", test)
        metrics |= test["metrics"]
    if trainer.is_global_zero:
        write_artifacts(cfg, datamodule, loggers, metrics, fit["best_model_path"])
        progress.done("artifacts")
    best = fit["best_model_score"]
    return float(best) if best is not None else metrics.get(cfg.monitor, float("nan"))


def _fit(cfg, trainer, model, datamodule, loggers, progress) -> dict:
    from mmfusion.training.distributed import prepare_launch
    from mmfusion.training.embeddings import fit_datamodule
    from mmfusion.training.progress import fit_record
    from mmfusion.training.resume import checkpoint_to_resume

    ckpt_path = checkpoint_to_resume(cfg.resume, cfg.ckpt_path, cfg.paths.output_dir)
    trained = progress.get("trained")
    if trained and trained.get("max_epochs") != cfg.trainer.max_epochs:
        trained = None
    if trained and ckpt_path:  # the loop had ended: only the end-of-fit hooks are left
        trainer.fit_loop.max_epochs = trained["epochs"]
    prepare_launch(trainer)
    # frozen encoders: fusion + head fit on cached embeddings; tested on the files
    fit_data = fit_datamodule(cfg.training, cfg.data.cache_dir, model, datamodule, loggers)
    trainer.fit(model, datamodule=fit_data, ckpt_path=ckpt_path)
    model.embedded_inputs = False
    record = trained or fit_record(trainer)
    if trainer.is_global_zero:
        progress.done("fit", record)
    return record


def resolve_init_from(cfg: DictConfig) -> dict[str, str]:
    """Each `encoder.<m>.init_from` (run dir, checkpoint or MLflow model URI) replaced, in place,
    by the local checkpoint file it names (the encoders read files only); returns
    {modality: the source as given}."""
    from mmfusion.serving.sources import resolve_checkpoint

    given = {}
    tracking_uri = OmegaConf.select(cfg, "logger.mlflow.tracking_uri", default=None)
    for modality, encoder in (cfg.get("encoder") or {}).items():
        source = encoder.get("init_from") if encoder else None
        if source:
            folder = Path(cfg.paths.output_dir) / "init_from" / modality
            encoder.init_from = str(resolve_checkpoint(str(source), tracking_uri, folder))
            given[modality] = str(source)
    return given


def write_artifacts(cfg, datamodule, loggers, metrics, best_model_path: str) -> None:
    """Run-dir files, mirrored to MLflow: metrics, config, best checkpoint.

    The test split's evaluation artifacts come from the callbacks (`callbacks.evaluation`).
    """
    from mmfusion.evaluation.predictions import print_summary
    from mmfusion.tracking.loggers import log_artifact, mlflow_loggers

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
    if best_model_path:
        log_artifact(loggers, Path(best_model_path), "checkpoints")
    run = next(iter(mlflow_loggers(loggers)), None)
    print_summary(
        {k: v for k, v in metrics.items() if k.startswith(("test/", "val/"))},
        run.run_id if run else None,
        out,
        run._tracking_uri if run else None,
    )


@hydra_app("mmfusion", "train")
def main(cfg: DictConfig) -> float:
    return train(cfg)


if __name__ == "__main__":
    main()
