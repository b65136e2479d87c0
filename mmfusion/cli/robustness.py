"""`python -m mmfusion.robustness RUN_DIR...`: a Markdown table comparing runs' robustness
evaluations (`robustness.json`: accuracy without each modality, noise robustness)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from mmfusion.cli.tool import parser, run_tool
from mmfusion.errors import DataError

PROG = "mmfusion.robustness"


def arguments() -> argparse.ArgumentParser:
    args = parser(PROG, __doc__)
    args.add_argument("runs", nargs="+", type=Path, help="run directories of `python -m mmfusion`")
    return args


def table(args: argparse.Namespace) -> None:
    from mmfusion.evaluation.robustness import summary_table  # after `--help`: it loads torch

    runs = [d for d in args.runs if (d / "robustness.json").is_file()]
    if not runs:
        raise DataError(f"no robustness.json in {', '.join(map(str, args.runs))}")
    print(summary_table(runs))


def main(argv: Sequence[str] | None = None) -> None:
    run_tool(PROG, arguments(), table, argv)


if __name__ == "__main__":
    main()
