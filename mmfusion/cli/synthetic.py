"""`mmfusion-synthetic --root DIR [--per-class-train N ...]`: write the synthetic benchmark (the
default data, which `python -m mmfusion` generates itself on first use) to a folder."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from mmfusion.cli.tool import parser, run_tool
from mmfusion.data.synthetic import MODALITIES, SPLIT_DIRS, SyntheticSpec, generate
from mmfusion.data.synthetic.spec import default_per_class

PROG = "mmfusion-synthetic"


def arguments() -> argparse.ArgumentParser:
    args = parser(PROG, __doc__)
    args.add_argument("--root", type=Path, required=True, help="output folder")
    for split, n in default_per_class().items():
        args.add_argument(f"--per-class-{split}", type=int, default=n, help="patients per class")
    args.add_argument("--image-size", type=int, default=128)
    args.add_argument("--finding-prob", type=float, default=0.6)
    args.add_argument("--seed", type=int, default=0)
    args.add_argument("--workers", type=int, default=2)
    return args


def write(args: argparse.Namespace) -> None:
    spec = SyntheticSpec(
        per_class={s: getattr(args, f"per_class_{s}") for s in SPLIT_DIRS},
        image_size=args.image_size,
        finding_prob={m: args.finding_prob for m in MODALITIES},
        seed=args.seed,
    )
    start = time.perf_counter()
    generate(args.root, spec, workers=args.workers)
    print(f"wrote {args.root} (key {spec.key()}) in {time.perf_counter() - start:.1f} s")


def main(argv: Sequence[str] | None = None) -> None:
    run_tool(PROG, arguments(), write, argv)


if __name__ == "__main__":
    main()
