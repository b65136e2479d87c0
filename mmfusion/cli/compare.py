"""`python -m mmfusion.compare [multirun_dir=DIR | parent=RUN_ID]`: the comparison report of
finished runs (see `mmfusion.evaluation.comparison`); options in conf/compare.yaml."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from mmfusion.cli.tool import CONFIG_DIR, one_line_errors
from mmfusion.errors import ConfigError
from mmfusion.evaluation.comparison import compare


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="compare")
@one_line_errors("mmfusion.compare")
def main(cfg: DictConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if cfg.multirun_dir and cfg.parent:
        raise ConfigError("give multirun_dir= or parent=, not both")
    report = compare(
        cfg.tracking_uri,
        cfg.experiment,
        cfg.parent,
        cfg.multirun_dir,
        Path(cfg.out) if cfg.out else None,
        cfg.n_resamples,
        cfg.log,
        cfg.get("reference"),
    )
    print(report.read_text())
    print(f"report: {report} (+ .html, .png, .csv)")


if __name__ == "__main__":
    main()
