"""Every config group member composes, and its objects instantiate."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from conftest import CONF, run_cli

GROUPS = [
    "data",
    "modality",
    "backbone",
    "fusion",
    "model",
    "training",
    "trainer",
    "logger",
    "callbacks",
    "experiment",
    "hparams_search",
]
# the option each real-data member needs (`???` in its yaml)
DATA_REQUIRED = {
    "folder": "root",
    "cxr_ct_cough": "root",
    "covid_xray_ct": "root",
    "manifest": "manifest",
}
MEMBERS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


def test_every_group_has_members():
    assert {g for g, _ in MEMBERS} == set(GROUPS)


@pytest.mark.parametrize(("group", "member"), MEMBERS, ids=[f"{g}={m}" for g, m in MEMBERS])
def test_member_composes_and_resolves(compose_cfg, tmp_path, group, member):
    overrides = [f"{group}={member}"]
    if group != "data":
        overrides += ["data=folder", f"data.root={tmp_path}"]
    elif member in DATA_REQUIRED:
        overrides += [f"data.{DATA_REQUIRED[member]}={tmp_path}"]
    cfg = compose_cfg(*overrides)
    assert cfg.modality.names
    for key in ("data", "fusion", "model", "trainer", "logger", "callbacks"):
        assert cfg[key] is not None
    # resolving every interpolation catches typos in any member
    from omegaconf import OmegaConf

    OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("member", [p.stem for p in sorted((CONF / "backbone").glob("*.yaml"))])
def test_backbone_and_fusion_instantiate(compose_cfg, member):
    cfg = compose_cfg(f"backbone={member}", "fusion=early", "modality=ct_cxr")
    net = instantiate(cfg.fusion, num_classes=3)
    assert net.head.out_features == 3


def test_callbacks_and_loggers_instantiate(compose_cfg):
    cfg = compose_cfg("logger=csv")
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    assert {type(c).__name__ for c in callbacks} >= {
        "ModelCheckpoint",
        "EarlyStopping",
        "RichProgressBar",
        "LearningRateMonitor",
    }
    assert [type(instantiate(c)).__name__ for c in cfg.logger.values()] == ["CSVLogger"]


def test_mlflow_logger_points_at_sqlite_in_working_dir(compose_cfg, tmp_path):
    cfg = compose_cfg()
    assert cfg.logger.mlflow.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"


def test_help_lists_the_groups(tmp_path):
    result = run_cli(["mmfusion", "--help"], cwd=tmp_path, timeout=120)
    assert result.returncode == 0
    for group in GROUPS:
        assert f"{group}:" in result.stdout


def test_unknown_option_is_one_clear_error(tmp_path):
    result = run_cli(["mmfusion", "fusion=nonsense"], cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    assert "fusion" in result.stderr and "nonsense" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("overrides", "epochs"),
    [
        ((), 25),  # conf/recipe/synthetic_early.yaml: the default run's budget
        (("fusion=intermediate",), 14),  # no recipe: trainer/default.yaml
        (("data=folder", "data.root=/x"), 14),
        (("trainer.max_epochs=3",), 3),  # the command line wins over a recipe
        (("experiment=fusion_comparison", "hydra.mode=RUN"), 10),  # and so does an experiment
    ],
)
def test_recipe_sets_the_budget_of_one_data_fusion_pair(compose_cfg, overrides, epochs):
    assert compose_cfg(*overrides).trainer.max_epochs == epochs
