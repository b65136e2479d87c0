"""Where a trained model comes from, resolved to one local checkpoint file.

`resolve_checkpoint(source)` accepts what a user types wherever a trained model is asked for
(`python -m mmfusion.app`, `python -m mmfusion.predict`, an encoder's `init_from`):

- a checkpoint file (`RUN/checkpoints/epoch03.ckpt`): that file;
- a run directory of `python -m mmfusion`, or its `checkpoints/` folder: the best checkpoint
  (the one `epoch*.ckpt` that `save_top_k=1` keeps; `last.ckpt` when there is none);
- an MLflow model URI, `runs:/<run id>/model` (`runs:/<run id>` alone means its `model`),
  `models:/<name>/<version>`, `models:/<name>@<alias>`, `models:/<model id>`, or any other
  artifact URI holding a checkpoint: downloaded from the tracking store `tracking_uri`
  ($MLFLOW_TRACKING_URI, else `./mlflow.db`, where training logs) into `download_dir` (a new
  temporary folder unless given), and the checkpoint inside returned.

Errors are one-line `ConfigError`s naming the source.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmfusion.errors import ConfigError

#: the store `python -m mmfusion` logs to when started in the current directory
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")  # `runs:/`, `models:/`, `s3://`; not `C:\`


def is_mlflow_uri(source: str | Path) -> bool:
    return isinstance(source, str) and bool(URI_SCHEME.match(source))


def tracking_uri_or_default(tracking_uri: str | None = None) -> str:
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def resolve_checkpoint(
    source: str | Path, tracking_uri: str | None = None, download_dir: str | Path | None = None
) -> Path:
    """The local checkpoint file that `source` names (see the module docstring)."""
    if is_mlflow_uri(source):
        return _download(str(source), tracking_uri_or_default(tracking_uri), download_dir)
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        return best_in_run_dir(path)
    if path.suffix == ".ckpt":
        raise ConfigError(f"checkpoint {path} does not exist")
    raise ConfigError(
        f"model source {source} does not exist: give a checkpoint file, a run directory or an "
        "MLflow model URI (runs:/<run id>/model, models:/<name>/<version>)"
    )


def best_in_run_dir(folder: Path) -> Path:
    """The best checkpoint of a run directory (or of its `checkpoints/` folder)."""
    checkpoints = folder / "checkpoints" if (folder / "checkpoints").is_dir() else folder
    best = sorted(p for p in checkpoints.glob("epoch*.ckpt") if p.is_file())
    if len(best) == 1:
        return best[0]
    if len(best) > 1:
        names = ", ".join(p.name for p in best)
        raise ConfigError(f"{checkpoints} holds several checkpoints ({names}): give one of them")
    if (checkpoints / "last.ckpt").is_file():
        return checkpoints / "last.ckpt"
    raise ConfigError(f"no checkpoint in {checkpoints}: not a run directory of python -m mmfusion")


@contextmanager
def _global_tracking_uri(tracking_uri: str) -> Iterator[None]:
    """MLflow 3 finds the logged model behind `runs:/<id>/model` through the *global* tracking
    URI (its models:/ repository ignores the one passed), so set it for the download and put the
    previous one back (`set_tracking_uri` mirrors it in $MLFLOW_TRACKING_URI; None unsets)."""
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def _download(uri: str, tracking_uri: str, download_dir: str | Path | None) -> Path:
    import mlflow
    from mlflow.exceptions import MlflowException

    if re.fullmatch(r"runs:/[0-9a-f]+/?", uri):
        uri = uri.rstrip("/") + "/model"
    target = Path(download_dir or tempfile.mkdtemp(prefix="mmfusion-model-"))
    target.mkdir(parents=True, exist_ok=True)
    try:
        with _global_tracking_uri(tracking_uri):
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=uri, dst_path=str(target), tracking_uri=tracking_uri
                )
            )
    except (MlflowException, OSError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"cannot download the model {uri} from {tracking_uri}: {first}") from None
    if local.is_file():
        return local
    found = sorted(local.rglob("*.ckpt"))
    if len(found) != 1:
        raise ConfigError(
            f"{uri} holds {len(found)} checkpoint files, not one: is it a model logged by "
            "python -m mmfusion (runs:/<run id>/model)?"
        )
    return found[0]
