"""The checker's report as Rich tables and coloured findings, for a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

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


def _spread(values: list) -> str:
    return "/".join(map(str, values))


#: (report section, title, the columns after modality / class / files, their cells)
STATS_TABLES = (
    (
        "images",
        "Images (width / height: min, median, max)",
        ("formats", "modes", "width", "height", "sizes"),
        lambda s: (
            _short(s["formats"]),
            _short(s["modes"]),
            _spread(s["width"]),
            _spread(s["height"]),
            str(s["distinct_sizes"]),
        ),
    ),
    (
        "audio",
        "Audio (duration s: min, median, max)",
        ("formats", "sample rates", "channels", "duration"),
        lambda s: (
            _short(s["formats"]),
            _short(s["sample_rates"]),
            _short(s["channels"]),
            _spread(s["duration_s"]),
        ),
    ),
)


def _stats_tables(report: dict) -> list[Table]:
    tables = []
    for section, title, columns, cells in STATS_TABLES:
        if not report.get(section):
            continue
        table = Table(title=title)
        for column in ("modality", "class", "files", *columns):
            table.add_column(column)
        for modality, classes in report[section].items():
            for name, s in classes.items():
                table.add_row(modality, name, str(s["files"]), *cells(s))
        tables.append(table)
    return tables


def _baseline_table(baseline: dict) -> Table:
    features = ", ".join(baseline["features"]) or "none varying"
    drops = [f"{k} {v:+.2f}" for k, v in baseline["importance"].items() if v > 0][:3]
    table = Table(
        title="Metadata-only classifier (file properties, no content; fitted on train)",
        caption=f"{baseline['model']} on {baseline['n_train']} train samples; features: "
        f"{features}" + (f"; val accuracy drop when permuted: {', '.join(drops)}" if drops else ""),
    )
    for column in ("split", "samples", "accuracy", "95% CI", "chance", "p (> chance)"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, s in baseline["scores"].items():
        style = "bold yellow" if s["above_chance"] else ""
        table.add_row(
            split,
            str(s["n"]),
            f"[{style}]{s['accuracy']:.3f}[/]" if style else f"{s['accuracy']:.3f}",
            f"{s['ci'][0]:.3f}-{s['ci'][1]:.3f}",
            f"{s['chance']:.3f}",
            f"{s['p_value']:.2g}",
        )
    return table


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
    if report.get("metadata_baseline"):
        console.print(_baseline_table(report["metadata_baseline"]))
    for source, shared in report.get("overlap", {}).items():
        console.print(f"against {source}: {shared} file(s) of this set also there", highlight=False)
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
