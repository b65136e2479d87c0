"""`python -m mmfusion.check data=...`: the dataset checker (see `mmfusion.data.checker`).

Reuses the data config group, so it checks exactly what `python -m mmfusion data=...` would
train on. Prints tables and findings, or the JSON report with `check.json=true`; exits 1 when it
finds errors (unreadable files, leakage across splits, an unusable layout).
"""

from __future__ import annotations

import json
import logging
import os
import sys

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from mmfusion.cli.options import check_options
from mmfusion.cli.tool import hydra_app
from mmfusion.data.checker.console import print_report
from mmfusion.data.splits import run_layout


def check(cfg: DictConfig) -> int:
    """Run the checker on `cfg.data`; the exit status (0 clean or warnings only, 1 errors)."""
    from mmfusion.data.checker.audit import CheckOptions, audit  # after `--help`: it loads torch

    check_options(cfg)
    values = OmegaConf.to_container(cfg.check, resolve=True)
    against = values.pop("against", None) or ()
    options = CheckOptions(
        **{k: v for k, v in values.items() if k != "json"},
        against=(against,) if isinstance(against, str) else tuple(against),
    )
    layout = instantiate(cfg.data.layout)
    if hasattr(layout, "on_bad_file"):
        layout.on_bad_file = "skip"  # list unreadable folders instead of stopping at the first
    window = instantiate(cfg.data.decoding.ct.window) if "ct" in cfg.data.decoding else None
    # the splits exactly as training builds them: near-duplicate policy, k-fold
    layout = run_layout(
        layout,
        cfg.data.get("near_duplicates", "report"),
        options.phash_distance,
        window,
        cfg.data.get("cache_dir"),
        cfg.data.get("folds"),
        cfg.data.get("fold"),
    )
    report = audit(layout, list(cfg.modality.names), window, options)
    if cfg.check.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(
            report, Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 140)
        )
    return 1 if report["errors"] else 0


@hydra_app("mmfusion.check", "check")
def main(cfg: DictConfig) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="check: %(message)s")
    raise SystemExit(check(cfg))


if __name__ == "__main__":
    main()
