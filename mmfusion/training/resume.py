"""Where a resumed run continues: the rule that maps `resume=...` to a run directory.

Hydra makes a new run dir per launch; a resumed launch must instead reuse the killed run's dir,
where its checkpoints and its MLflow run id (`mlflow_run.json`) are. `hydra.run.dir` is
therefore computed by the `mmfusion_run_dir` resolver (`run_dir_or_exit`):

- `resume=false` (default): a fresh `outputs/<task>/runs/<time>_<fusion>-<backbone>-<modality>`.
- `resume=true` or `ckpt_path=last`: the newest earlier run dir with the same
  `<fusion>-<backbone>-<modality>` that holds `checkpoints/last.ckpt`.
- `resume=PATH`: that run dir (e.g. one job dir of a multirun, resumed as a single run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmfusion.errors import ConfigError

LAST = Path("checkpoints") / "last.ckpt"
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0", "none", "null", ""}


def resume_target(resume: Any, ckpt_path: Any) -> str | bool:
    """False, True (find the latest) or an explicit run-dir path."""
    text = str(resume).strip()
    if resume is None or resume is False or text.lower() in _FALSE:
        return str(ckpt_path) == "last"
    if resume is True or text.lower() in _TRUE:
        return True
    return text


def run_dir(resume: Any, ckpt_path: Any, runs_root: str, fresh_name: str) -> str:
    """hydra.run.dir for this launch (see the module docstring for the rule)."""
    target = resume_target(resume, ckpt_path)
    if target is False:
        return str(Path(runs_root) / fresh_name)
    if target is not True:
        path = Path(target).expanduser()
        if not path.is_dir():
            raise ConfigError(f"resume={target}: no such run directory")
        return str(path.resolve())
    suffix = fresh_name.split("_", 2)[-1]  # <date>_<time>_<fusion>-<backbone>-<modality>
    candidates = sorted(
        p for p in Path(runs_root).glob(f"*_{suffix}") if p.is_dir() and latest_checkpoint(p)
    )
    if not candidates:
        raise ConfigError(
            f"resume=true: no earlier {suffix} run with {LAST} under {runs_root}; "
            "pass resume=PATH_TO_RUN_DIR"
        )
    return str(candidates[-1].resolve())


def checkpoint_to_resume(resume: Any, ckpt_path: Any, output_dir: str | Path) -> str | None:
    """The checkpoint `trainer.fit` continues from, or None to start from scratch."""
    if resume_target(resume, ckpt_path) is False:
        return None if ckpt_path in (None, "") else str(ckpt_path)
    latest = latest_checkpoint(output_dir)
    return str(latest) if latest else None


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """`checkpoints/last.ckpt`, or the newest epoch file if last.ckpt is a dangling link.

    With `save_last: link`, Lightning deletes the previous best file before it relinks last.ckpt
    to the new one; a kill in between leaves the link dangling, and the new best file (the same
    epoch's state) is then the latest checkpoint.
    """
    last = Path(run_dir) / LAST
    if last.is_file():
        return last
    if not last.is_symlink():
        return None
    epochs = [p for p in last.parent.glob("epoch*.ckpt") if p.is_file()]
    return max(epochs, key=lambda p: p.stat().st_mtime_ns, default=None)


def run_dir_or_exit(resume: Any, ckpt_path: Any, runs_root: str, fresh_name: str) -> str:
    """`run_dir` as the `mmfusion_run_dir` resolver: Hydra resolves hydra.run.dir before
    mmfusion's error handling runs, so a bad option exits with one line here."""
    try:
        return run_dir(resume, ckpt_path, runs_root, fresh_name)
    except ConfigError as err:
        raise SystemExit(f"mmfusion: error: {err}") from None
