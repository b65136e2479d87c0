"""`python -m mmfusion.localisation CKPT [--split test] [--alone]`: how well the Grad-CAM maps of a
model trained on the synthetic data point at the findings the generator drew (one row per image
modality: median mass in the region, maps over one half, pointing-game hits)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mmfusion.cli.tool import parser, run_tool
from mmfusion.explain.localisation import GENERATOR_SPLITS, HEADER, localise

PROG = "mmfusion.localisation"


def arguments() -> argparse.ArgumentParser:
    args = parser(PROG, __doc__)
    args.add_argument("ckpt", help="a checkpoint of a run on data=synthetic")
    args.add_argument("--split", default="test", choices=list(GENERATOR_SPLITS))
    args.add_argument(
        "--alone", action="store_true", help="only patients whose finding no other modality shows"
    )
    return args


def score(args: argparse.Namespace) -> None:
    results = localise(args.ckpt, args.split, args.alone)
    print(HEADER)
    for result in results:
        print(result.row())


def main(argv: Sequence[str] | None = None) -> None:
    run_tool(PROG, arguments(), score, argv)


if __name__ == "__main__":
    main()
