"""The one Markdown-table writer of every report (evaluation, comparison, robustness,
explanations, benchmarks), so that tables read alike and their style changes in one place."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

RULES = {"l": "---", "r": "---:", "c": ":---:"}


def markdown_table(
    header: Sequence[object], rows: Iterable[Sequence[object]], align: str = ""
) -> str:
    """A Markdown table of `rows` under `header` (cells `str()`-ed onto one line, `|` escaped);
    `align`: a letter per column, `l`eft (the default for columns it leaves out), `r`ight or
    `c`entre."""
    rule = [RULES[a] for a in align.ljust(len(header), "l")]
    return "\n".join(table_row(cells) for cells in [header, rule, *rows])


def table_row(cells: Iterable[object]) -> str:
    """One row of a Markdown table, for tables written a row at a time."""
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
