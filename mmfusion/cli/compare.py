"""`python -m mmfusion.compare [multirun_dir=DIR | parent=RUN_ID]`: the comparison report of
finished runs (see `mmfusion.evaluation.comparison`); options in conf/compare.yaml."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from mmfusion.cli.options import check_options
from mmfusion.cli.tool import hydra_app
from mmfusion.errors import ConfigError
from mmfusion.runtime.signals import stop_on_signals
from mmfusion.tracking.server import check_reachable


@hydra_app("mmfusion.compare", "compare")
def main(cfg: DictConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    check_options(cfg)
    if cfg.multirun_dir and cfg.parent:
        raise ConfigError("give multirun_dir= or parent=, not both")
    check_reachable(cfg.tracking_uri, option="tracking_uri")
    with stop_on_signals():  # SIGTERM / SIGINT: exit 143 / 130, no traceback
        report = _compare(cfg)
    print(report.read_text())
    print(f"report: {report} (+ .html, .png, .csv)")


def _compare(cfg: DictConfig) -> Path:
    from mmfusion.evaluation.comparison import compare

    return compare(
        cfg.tracking_uri,
        cfg.experiment_name,
        cfg.parent,
        cfg.multirun_dir,
        Path(cfg.out) if cfg.out else None,
        cfg.n_resamples,
        cfg.log,
        cfg.get("reference"),
    )


if __name__ == "__main__":
    main()
