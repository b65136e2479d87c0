"""`python -m mmfusion.predict MODEL --ct a.png --cxr b.jpg --cough c.mp3`: class probabilities.

MODEL is a checkpoint, a run directory (its best checkpoint) or an MLflow model URI
(`runs:/<run id>/model`, `models:/<name>/<version>`, read from `--tracking-uri`).
One patient: give any subset of the model's modalities (the others are absent); the result is
JSON on stdout. Many patients: `--input FOLDER` (one sub-folder per modality, files paired by
stem) or `--input MANIFEST.csv` (a column per modality), one row per patient written to
`--output`. Files are decoded exactly as in training; the checkpoint is read weights-only.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from mmfusion.cli.tool import parser, run_tool
from mmfusion.errors import DataError

PROG = "mmfusion.predict"
MODALITIES = ("ct", "cxr", "cough")


def arguments() -> argparse.ArgumentParser:
    args = parser(PROG, __doc__)
    args.add_argument(
        "source",
        metavar="MODEL",
        help="a checkpoint, a run directory or an MLflow model URI (runs:/<run id>/model)",
    )
    args.add_argument(
        "--tracking-uri", help="MLflow store of runs:/ and models:/ sources (./mlflow.db)"
    )
    for modality in MODALITIES:
        args.add_argument(f"--{modality}", metavar="FILE", help=f"the patient's {modality} file")
    args.add_argument("--input", metavar="FOLDER|CSV", help="many patients: a folder or manifest")
    args.add_argument("--output", default="predictions.csv", help="CSV written with --input")
    args.add_argument("--batch-size", type=int, default=32, help="patients per forward pass")
    return args


def predict(args: argparse.Namespace) -> None:
    from mmfusion.serving.predictor import Predictor, folder_rows, manifest_rows
    from mmfusion.serving.sources import resolve_checkpoint

    predictor = Predictor(resolve_checkpoint(args.source, args.tracking_uri))
    if args.input:
        source = Path(args.input).expanduser()
        if source.is_dir():
            ids, rows = folder_rows(source, predictor.modalities)
        elif source.is_file():
            ids, rows = manifest_rows(source, predictor.modalities)
        else:
            raise DataError(f"--input {source} does not exist")
        probs = predictor.predict_many(rows, args.batch_size)
        output = Path(args.output)
        predictor.as_frame(ids, rows, probs).to_csv(output, index=False)
        print(f"wrote {output}")
        return
    files = {m: getattr(args, m) for m in MODALITIES if getattr(args, m)}
    probs = predictor.predict([files])[0]
    result = {
        "prediction": predictor.class_names[int(probs.argmax())],
        "probabilities": {n: float(p) for n, p in zip(predictor.class_names, probs, strict=True)},
        "modalities": [m for m in predictor.modalities if files.get(m)],
        "missing": [m for m in predictor.modalities if not files.get(m)],
    }
    print(json.dumps(result, indent=2))


def main(argv: Sequence[str] | None = None) -> None:
    run_tool(PROG, arguments(), predict, argv)


if __name__ == "__main__":
    main()
