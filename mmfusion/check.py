"""`python -m mmfusion.check data=...`: the dataset checker (see mmfusion/data/audit.py).

Reuses the data config group, so it checks exactly what `python -m mmfusion data=...` would
train on. Prints tables and findings, or the JSON report with `--json` / `check.json=true`;
exits 1 when it finds errors (unreadable files, leakage across splits, an unusable layout).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from mmfusion.data.audit import CheckOptions, audit
from mmfusion.errors import find_user_error

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
LEVEL_STYLE = {"error": "bold red", "warning": "bold yellow"}


def _counts_table(report: dict) -> Table:
    modalities = report["data"]["modalities"]
    table = Table(
        title="Files per split and class", caption="paired: patients with a file in every modality"
    )
    for column in ("split", "class", *modalities, "paired"):
        table.add_column(column, justify="left" if column in ("split", "class") else "right")
    for split, classes in report["counts"].items():
        for name, counts in classes.items():
            table.add_row(split, name, *(str(counts[c]) for c in (*modalities, "paired")))
    return table


def _short(counter: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counter.items())


def _stats_tables(report: dict) -> list[Table]:
    tables = []
    if report.get("images"):
        table = Table(title="Images (width / height: min, median, max)")
        columns = ("modality", "class", "files", "formats", "modes", "width", "height", "sizes")
        for column in columns:
            table.add_column(column)
        for modality, classes in report["images"].items():
            for name, s in classes.items():
                table.add_row(
                    modality,
                    name,
                    str(s["files"]),
                    _short(s["formats"]),
                    _short(s["modes"]),
                    "/".join(map(str, s["width"])),
                    "/".join(map(str, s["height"])),
                    str(s["distinct_sizes"]),
                )
        tables.append(table)
    if report.get("audio"):
        table = Table(title="Audio (duration s: min, median, max)")
        for column in (
            "modality",
            "class",
            "files",
            "formats",
            "sample rates",
            "channels",
            "duration",
        ):
            table.add_column(column)
        for modality, classes in report["audio"].items():
            for name, s in classes.items():
                table.add_row(
                    modality,
                    name,
                    str(s["files"]),
                    _short(s["formats"]),
                    _short(s["sample_rates"]),
                    _short(s["channels"]),
                    "/".join(map(str, s["duration_s"])),
                )
        tables.append(table)
    return tables


def print_report(report: dict, console: Console) -> None:
    data = report.get("data", {})
    console.print(
        f"[bold]{data.get('layout')}[/] {data.get('root')}  "
        f"modalities {data.get('modalities')}  classes {report.get('classes')}"
    )
    if "counts" in report:
        console.print(_counts_table(report))
    for table in _stats_tables(report):
        console.print(table)
    for finding in report["findings"]:
        style = LEVEL_STYLE.get(finding["level"], "")
        console.print(
            f"[{style}]{finding['level'].upper()}[/] {finding['message']}",
            highlight=False,
            soft_wrap=True,
        )
        for item in finding["items"]:
            console.print(f"    {item}", highlight=False, soft_wrap=True)
        if finding["count"] > len(finding["items"]):
            console.print(f"    ... and {finding['count'] - len(finding['items'])} more")
    verdict = "[bold red]FAILED[/]" if report["errors"] else "[bold green]OK[/]"
    console.print(
        f"{verdict}: {report['errors']} errors, {report['warnings']} warnings, "
        f"{report.get('files', 0)} files"
    )


def check(cfg: DictConfig) -> int:
    """Run the checker on `cfg.data`; the exit status (0 clean or warnings only, 1 errors)."""
    options = CheckOptions(**{k: v for k, v in cfg.check.items() if k != "json"})
    layout = instantiate(cfg.data.layout)
    window = instantiate(cfg.data.ct_window) if cfg.data.get("ct_window") else None
    report = audit(layout, list(cfg.modality.names), window, options)
    if cfg.check.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(
            report, Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 140)
        )
    return 1 if report["errors"] else 0


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="check")
def _main(cfg: DictConfig) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="check: %(message)s")
    try:
        status = check(cfg)
    except Exception as err:
        user_error = find_user_error(err)
        if user_error is None:
            raise
        raise SystemExit(f"mmfusion.check: error: {user_error}") from None
    raise SystemExit(status)


def main() -> None:
    """`--json` is sugar for `check.json=true` (Hydra's own parser would refuse it)."""
    if "--json" in sys.argv:
        sys.argv = [a for a in sys.argv if a != "--json"] + ["check.json=true"]
    _main()


if __name__ == "__main__":
    main()
