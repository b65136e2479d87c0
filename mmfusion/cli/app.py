"""`python -m mmfusion.app SOURCE`: a web page to try a trained model on one patient's files.

SOURCE is a checkpoint, a run directory or an MLflow model URI (`runs:/<run id>/model`,
`models:/<name>/<version>`). The page binds to 127.0.0.1 (this machine only) unless `--host`
says otherwise; `--share` (off by default) asks Gradio for a public link, the one thing that
needs the internet. Needs the `demo` extra: `pip install -e ".[demo]"`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from mmfusion.cli.tool import parser, run_tool
from mmfusion.errors import ConfigError

PROG = "mmfusion.app"
MAX_UPLOAD_MB = 20


def arguments() -> argparse.ArgumentParser:
    args = parser(PROG, __doc__)
    args.add_argument(
        "source",
        help="a checkpoint, a run directory or an MLflow model URI (runs:/<run id>/model)",
    )
    args.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    args.add_argument("--port", type=int, default=7860, help="port to listen on (7860)")
    args.add_argument("--share", action="store_true", help="also make a public Gradio link")
    args.add_argument(
        "--tracking-uri", help="MLflow store of runs:/ and models:/ sources (./mlflow.db)"
    )
    args.add_argument(
        "--examples-dir",
        default="data",
        help="where the synthetic example patients are generated on first use (./data)",
    )
    args.add_argument(
        "--max-upload-mb", type=float, default=MAX_UPLOAD_MB, help="largest file accepted (20)"
    )
    return args


def serve(args: argparse.Namespace) -> None:
    try:
        from mmfusion.serving.app import build_app, synthetic_examples
    except ImportError as err:
        raise ConfigError(
            f"the model page needs Gradio ({err}): pip install -e '.[demo]'"
        ) from None
    from mmfusion.models.checkpoint import read_checkpoint
    from mmfusion.serving.model_card import model_card
    from mmfusion.serving.predictor import Predictor
    from mmfusion.serving.sources import resolve_checkpoint

    checkpoint = resolve_checkpoint(args.source, args.tracking_uri)
    predictor = Predictor(checkpoint)
    hparams = read_checkpoint(checkpoint).get("hyper_parameters", {})
    card = model_card(args.source, checkpoint, hparams, args.tracking_uri)
    examples_dir = Path(args.examples_dir).expanduser().resolve()
    examples = synthetic_examples(examples_dir, predictor.modalities)
    max_bytes = int(args.max_upload_mb * 2**20)
    page = build_app(predictor, card, examples, max_bytes)
    print(f"{PROG}: serving {checkpoint} on http://{args.host}:{args.port} (Ctrl-C stops it)")
    page.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        max_file_size=max_bytes,
        allowed_paths=[str(examples_dir)],
        ssr_mode=False,
        quiet=True,
    )


def main(argv: Sequence[str] | None = None) -> None:
    run_tool(PROG, arguments(), serve, argv)


if __name__ == "__main__":
    main()
