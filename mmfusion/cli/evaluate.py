"""`python -m mmfusion.evaluate ckpt_path=...`: a saved model on any split, same artifacts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from mmfusion.cli.tool import hydra_app
from mmfusion.errors import ConfigError

log = logging.getLogger(__name__)


def _with_source(cfg: DictConfig, source: DictConfig, ckpt: Path) -> None:
    """Modalities, decoding and the run's name / tags come from the checkpoint's run config."""
    with open_dict(cfg):
        cfg.modality = source.modality
        if cfg.get("data") is None:
            cfg.data = source.data
        cfg.run_name = f"evaluate-{source.get('run_name', ckpt.stem)}-{cfg.split}"
        for logger in (cfg.get("logger") or {}).values():
            if logger and "tags" in logger:
                tags = OmegaConf.select(source, "logger.mlflow.tags", default={}) or {}
                logger.tags = {**tags, "source_checkpoint": str(ckpt), "split": cfg.split}
                logger.run_name = cfg.run_name


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test the checkpoint's model on `cfg.split`; metrics are named `<split>/...`.

    SIGTERM / SIGINT: the MLflow run is marked KILLED, exit status 143 / 130. torch and
    Lightning are imported here, not with the module: the preflight checks answer in seconds."""
    from mmfusion.runtime.signals import stop_on_signals

    with stop_on_signals():
        return _evaluate(cfg)


def _evaluate(cfg: DictConfig) -> dict[str, float]:
    import lightning.pytorch as pl
    from hydra.utils import instantiate

    from mmfusion.data.decoding.spec import DecodingSpec
    from mmfusion.data.layouts.splitting import SPLITS
    from mmfusion.models.checkpoint import load_classifier
    from mmfusion.tracking.loggers import final_status

    if cfg.split not in SPLITS:
        raise ConfigError(f"split={cfg.split!r}: use one of {SPLITS}")
    ckpt = Path(cfg.ckpt_path).expanduser().resolve()
    model = load_classifier(ckpt)
    _with_source(cfg, OmegaConf.create(model.hparams.run_config), ckpt)
    pl.seed_everything(cfg.seed, workers=True)
    # the model only understands inputs decoded as in training: the checkpoint's spec
    # (a partial: Hydra would merge the spec into the config, and its dataclasses hold unions)
    spec = DecodingSpec.from_dict(model.hparams.decoding)
    datamodule = instantiate(cfg.data, _partial_=True)(decoding=spec)
    datamodule.prepare_data()
    datamodule.setup("test")
    if datamodule.class_names != list(model.hparams.class_names):
        raise ConfigError(
            f"the data's classes {datamodule.class_names} differ from the model's "
            f"{list(model.hparams.class_names)} ({ckpt})"
        )
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c]
    loggers = [instantiate(c) for c in cfg.logger.values() if c]
    # Lightning names the loop's metrics test/*; they are renamed to the split and logged below
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=False)
    with final_status(loggers):
        return _test(cfg, datamodule, model, trainer, loggers)


def _test(cfg: DictConfig, datamodule, model, trainer, loggers) -> dict[str, float]:
    from mmfusion.data.loading import batch_loader
    from mmfusion.evaluation.predictions import print_summary
    from mmfusion.tracking.loggers import log_artifact, mlflow_loggers

    # unshuffled, so the predictions' rows follow the split's samples
    loader = batch_loader(datamodule.datasets[cfg.split], datamodule.batch_size)
    trainer.test(model, dataloaders=loader)
    metrics = {
        f"{cfg.split}/{k.split('/', 1)[1]}": float(v)
        for k, v in trainer.callback_metrics.items()
        if "/" in k
    }
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        logger.log_metrics(metrics)
    for name in ("metrics.json", f"{cfg.split}_predictions.csv"):
        if (out / name).is_file():
            log_artifact(loggers, out / name)
    for folder, name in (("evaluation", "evaluation"), ("explain", "explain"), (".hydra", "hydra")):
        if (out / folder).is_dir():
            log_artifact(loggers, out / folder, name)
    run = next(iter(mlflow_loggers(loggers)), None)
    print_summary(metrics, run.run_id if run else None, out, run._tracking_uri if run else None)
    return metrics


@hydra_app("mmfusion.evaluate", "evaluate")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
