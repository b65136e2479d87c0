"""Every ready experiment composes, and so does every value its sweep will launch."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from conftest import CONF

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
# fusion members listed in fusion_comparison that issue 3 (another branch) adds
PENDING = {("fusion", "late"), ("fusion", "attention"), ("fusion", "gated")}


def sweep_values(params) -> list[tuple[str, str]]:
    parser = OverridesParser.create()
    lines = [f"{k}={v}" for k, v in (params or {}).items()]
    return [
        (o.key_or_group, str(v)) for o in parser.parse_overrides(lines) for v in o.sweep_iterator()
    ]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_and_its_sweep_values_compose(compose_cfg, tmp_path, experiment):
    base = [f"experiment={experiment}"]
    cfg = compose_cfg(*base)
    if "root" in cfg.data.keys():  # noqa: SIM118 (`in` alone is False for a ??? value)
        base.append(f"data.root={tmp_path}")
    if OmegaConf.is_missing(cfg.data, "manifest"):  # the real-data recipes: the user's build
        base.append(f"data.manifest={tmp_path}/manifest.csv")
    OmegaConf.to_container(compose_cfg(*base), resolve=True)
    values = sweep_values(cfg.hydra.sweeper.get("params"))
    missing = set()
    for key, value in values:
        if key in cfg.hydra.runtime.choices and not (CONF / key / f"{value}.yaml").is_file():
            missing.add((key, value))
            continue
        OmegaConf.to_container(compose_cfg(*base, f"{key}={value}"), resolve=True)
    assert missing <= PENDING, f"sweep values with no config: {missing - PENDING}"


def test_real_data_recipes_need_the_users_build_and_run_every_fold(compose_cfg):
    """experiment=real_*: data.manifest is required (a built benchmark, never shipped), and
    one multirun covers the 5 folds of the builders."""
    for experiment in [e for e in EXPERIMENTS if e.startswith("real_")]:
        cfg = compose_cfg(f"experiment={experiment}")
        assert OmegaConf.is_missing(cfg.data, "manifest"), experiment
        assert cfg.hydra.sweeper.params["data.layout.test_fold"] == "range(0,5)", experiment
        assert cfg.logger.mlflow.experiment_name == experiment, experiment


def test_sweep_experiments_run_as_multiruns(compose_cfg):
    for experiment in EXPERIMENTS:
        cfg = compose_cfg(f"experiment={experiment}")
        if cfg.hydra.sweeper.get("params"):
            assert str(cfg.hydra.mode) == "RunMode.MULTIRUN", experiment


def test_optuna_search_composes_for_both_fusions(compose_cfg):
    for fusion in ("early", "intermediate"):
        cfg = compose_cfg("hparams_search=optuna", f"fusion={fusion}")
        assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
        assert cfg.callbacks.optuna_pruning.study_name == f"search-{fusion}-all"
        OmegaConf.to_container(cfg, resolve=True)
