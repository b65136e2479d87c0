"""Hyperparameter search with a current Optuna, as a Hydra sweeper (`hparams_search=optuna`).

Why not `hydra-optuna-sweeper`: its 1.2.0 and 1.3.0 releases pin `optuna<3`, and optuna 2.10's
SQLite storage fails on SQLAlchemy 2.x (an AssertionError while checking the schema version),
so the study could not be stored or resumed with our dependency set. This sweeper drives
optuna's ask / tell API instead and launches each trial through Hydra's launcher, so trials are
ordinary jobs: own run dir, own MLflow run (a child of the multirun's parent run).

- The search space is `hydra.sweeper.params` in Hydra's override grammar, like the official
  plugin: `choice(a, b)`, `interval(lo, hi)`, `tag(log, interval(lo, hi))`, `tag(int, ...)`,
  `range(a, b)`; sweep overrides on the command line (`fusion=early,intermediate`) are choices
  too. A key the composed config does not have (e.g. `fusion.head.dropout` with `fusion=early`) is
  left out of the search with a warning.
- The study lives in SQLite beside the MLflow store (`optuna.db`); rerunning the same command
  loads it (`load_if_exists`) and adds `n_trials` more trials, the sampler seeing the old ones.
- A trial that raises is told FAILED and the study goes on; a trial pruned by the pruner (the
  `OptunaPruning` Lightning callback reports the monitored metric after every validation) is
  told PRUNED.
- At the end the best trial is printed, written to `<sweep dir>/optimization_results.yaml` and
  logged to the multirun's MLflow parent run (params `best/<key>`, metric `best_value`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mmfusion.errors import ConfigError

log = logging.getLogger(__name__)
_ABSENT = object()


def _built(spec: Any) -> Any:
    """Hydra instantiates the sweeper's nested configs already; a plain dict still needs it."""
    return instantiate(spec) if isinstance(spec, dict | DictConfig) else spec


def distribution(override: Override):
    """The optuna distribution of one sweep override (Hydra's grammar)."""
    import optuna.distributions as od

    value = override.value()
    if isinstance(value, ChoiceSweep):
        return od.CategoricalDistribution(list(override.sweep_iterator()))
    if isinstance(value, RangeSweep):
        return od.CategoricalDistribution(list(override.sweep_iterator()))
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if "int" in value.tags:
            return od.IntDistribution(int(value.start), int(value.end), log=log_scale)
        return od.FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ValueError(f"cannot search {override.input_line!r}: not a choice / range / interval")


def pruned_trial(storage: str, study_name: str, number: int, pruner: Any):
    """The running trial `number` of a stored study, usable from inside the training job."""
    import optuna

    backend = optuna.storages.get_storage(storage)
    study = optuna.load_study(study_name=study_name, storage=backend, pruner=pruner)
    study_id = backend.get_study_id_from_name(study_name)
    trial_id = backend.get_trial_id_from_study_id_trial_number(study_id, number)
    return optuna.trial.Trial(study, trial_id)


class OptunaPruning(pl.Callback):
    """Reports the monitored metric to the trial after each validation; stops a pruned trial.

    Hand-written rather than optuna-integration's callback because the trial lives in the
    sweeper's process: the job rebuilds it from the study's storage by trial number. Not a
    dataclass: OmegaConf would turn it into a config where the callbacks are gathered.
    """

    def __init__(
        self,
        storage: str,
        study_name: str,
        monitor: str,
        trial_number: int | None = None,
        pruner: Any = None,
    ) -> None:
        self.storage = storage
        self.study_name = study_name
        self.monitor = monitor
        self.trial_number = trial_number
        self.pruner = pruner
        self._trial = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import optuna

        value = trainer.callback_metrics.get(self.monitor)
        if self.trial_number is None or trainer.sanity_checking or value is None:
            return
        if self._trial is None:
            self._trial = pruned_trial(
                self.storage, self.study_name, self.trial_number, self.pruner
            )
        self._trial.report(float(value), step=trainer.current_epoch)
        if self._trial.should_prune():
            from mmfusion.tracking.loggers import mlflow_loggers

            for logger in mlflow_loggers(trainer.loggers):
                logger.experiment.set_tag(logger.run_id, "optuna.state", "PRUNED")
            raise optuna.TrialPruned(
                f"trial {self.trial_number} pruned at epoch {trainer.current_epoch}: "
                f"{self.monitor}={float(value):.4f}"
            )


@dataclass(eq=False)
class OptunaSearch:
    """The sweeper's logic (the Hydra plugin class in `hydra_plugins` only delegates here)."""

    direction: str
    storage: str
    study_name: str
    n_trials: int
    n_jobs: int = 1
    sampler: Any = None
    pruner: Any = None
    params: dict[str, Any] | None = None
    trial_key: str | None = None
    job_idx: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.params = dict(self.params or {})

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def _space(self, arguments: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
        """Searched distributions and fixed overrides, from the config and the command line."""
        parser = OverridesParser.create()
        lines = [f"{k}={v}" for k, v in self.params.items()]
        by_key = {o.key_or_group: o for o in parser.parse_overrides(lines)}
        by_key |= {o.key_or_group: o for o in parser.parse_overrides(list(arguments))}
        space, fixed = {}, []
        for key, override in by_key.items():
            if not override.is_sweep_override():
                fixed.append(override.input_line)
                continue
            is_group = key in (self.config.hydra.runtime.choices or {})
            if not is_group and OmegaConf.select(self.config, key, default=_ABSENT) is _ABSENT:
                log.warning("search: %s is not in this config; not searched", key)
                continue
            space[key] = distribution(override)
        return space, fixed

    def sweep(self, arguments: list[str]) -> Any:
        import optuna

        space, fixed = self._space(arguments)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self.storage,
            sampler=_built(self.sampler),
            pruner=_built(self.pruner),
            direction=self.direction,
            load_if_exists=True,
        )
        log.info(
            "study %r in %s: %d earlier trials; searching %s",
            self.study_name,
            self.storage,
            len(study.trials),
            ", ".join(f"{k}: {d}" for k, d in space.items()),
        )
        done = 0
        while done < self.n_trials:
            trials = [
                self._ask(study, space) for _ in range(min(self.n_jobs, self.n_trials - done))
            ]
            overrides = [self._overrides(trial, fixed) for trial in trials]
            try:
                returns = list(self.launcher.launch(overrides, initial_job_idx=self.job_idx))
            except (Exception, SystemExit) as err:  # a config error: the batch never ran
                returns = [err] * len(trials)
            self.job_idx += len(trials)
            for trial, result in zip(trials, returns, strict=True):
                self._tell(study, trial, result)
            done += len(trials)
        return self._report_best(study)

    def _ask(self, study: Any, space: dict[str, Any]) -> Any:
        try:
            return study.ask(space)
        except ValueError as err:  # optuna: a parameter's distribution differs from the study's
            from optuna.trial import TrialState

            last = study.trials[-1] if study.trials else None
            if last is not None and last.state == TrialState.RUNNING:  # the half-asked trial
                study.tell(last.number, state=TrialState.FAIL)
            raise ConfigError(
                f"hydra.sweeper.params: the search space differs from the stored study "
                f"{self.study_name!r} ({err}); resume with the same space or set "
                "hydra.sweeper.study_name to a new name"
            ) from err

    def _overrides(self, trial: Any, fixed: list[str]) -> tuple[str, ...]:
        chosen = [f"{k}={v}" for k, v in trial.params.items()]
        extra = [f"{self.trial_key}={trial.number}"] if self.trial_key else []
        return tuple(fixed + chosen + extra)

    @staticmethod
    def _tell(study: Any, trial: Any, result: Any) -> None:
        import optuna
        from optuna.trial import TrialState

        if isinstance(result, BaseException):
            error = result
        else:
            try:
                value = result.return_value  # re-raises the job's exception
                study.tell(trial, float(value))
                log.info("trial %d: %s", trial.number, value)
                return
            except (Exception, SystemExit) as err:
                error = err
        if isinstance(error, optuna.TrialPruned):
            study.tell(trial, state=TrialState.PRUNED)
            log.info("trial %d pruned: %s", trial.number, error)
        else:
            study.tell(trial, state=TrialState.FAIL)
            log.warning(
                "trial %d failed, the study goes on: %s: %s",
                trial.number,
                type(error).__name__,
                error,
            )

    def _report_best(self, study: Any) -> dict[str, Any] | None:
        from optuna.trial import TrialState

        states = {s.name: len(study.get_trials(states=(s,))) for s in TrialState}
        try:
            best = study.best_trial
        except ValueError:
            log.warning("no trial of study %r completed (%s)", self.study_name, states)
            return None
        results = {
            "study_name": self.study_name,
            "storage": self.storage,
            "direction": self.direction,
            "best_trial": best.number,
            "best_value": best.value,
            "best_params": best.params,
            "trials": {k: v for k, v in states.items() if v},
        }
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        path = sweep_dir / "optimization_results.yaml"
        OmegaConf.save(OmegaConf.create(results), path)
        print(f"best trial {best.number}: value {best.value:.4f}, params {best.params}")
        print(f"study {self.study_name!r} in {self.storage}; results in {path}")
        self._log_best(results, path)
        return results

    def _log_best(self, results: dict[str, Any], path: Path) -> None:
        from mlflow.tracking import MlflowClient

        from mmfusion.tracking.experiment import PARENT_RUN_ENV, mlflow_logger_config

        run_id = os.environ.get(PARENT_RUN_ENV)
        logger_cfg = mlflow_logger_config(self.config)
        if not run_id or logger_cfg is None:
            return
        client = MlflowClient(logger_cfg.tracking_uri)
        for key, value in results["best_params"].items():
            client.log_param(run_id, f"best/{key}", value)
        client.log_metric(run_id, "best_value", results["best_value"])
        client.set_tag(run_id, "optuna.study", f"{self.study_name} @ {self.storage}")
        client.log_artifact(run_id, str(path))
