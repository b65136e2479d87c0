"""What every configured job checks before it starts: the options (`options.RULES`), the folders
it will write to, and the tracking store. One line per problem, exit status 1, within seconds:
this runs as the first Hydra callback, before any MLflow experiment or run exists and before
torch or Lightning are imported.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mmfusion.cli.options import problems
from mmfusion.cli.tool import error_lines
from mmfusion.errors import ConfigError
from mmfusion.models.encoders.hub import HUB_FILES
from mmfusion.tracking.server import DEFAULT_TIMEOUT, check_reachable, is_server


def program(config: DictConfig) -> str:
    """The command a user typed for this app (`mmfusion`, `mmfusion.evaluate`, ...)."""
    task = config.get("task_name", "train")
    return "mmfusion" if task == "train" else f"mmfusion.{task}"


def unwritable(folder: str | Path) -> str | None:
    """Why nothing can be written into `folder` (created if missing), or None: a file is
    tried in its nearest existing ancestor (permission bits alone mislead root)."""
    path = Path(folder).expanduser().absolute()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            return None
    except OSError as err:
        return f"{existing}: {err.strerror or err}"


def sqlite_folder(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")).parent if uri.startswith("sqlite:///") else None


def store_problems(config: DictConfig) -> list[str]:
    """Each MLflow logger's store: a server that answers, or a SQLite file's writable folder."""
    found = []
    for name, logger in (config.get("logger") or {}).items():
        uri = logger and logger.get("tracking_uri")
        if not uri:
            continue
        option = f"logger.{name}.tracking_uri"
        folder = sqlite_folder(str(uri))
        reason = folder and unwritable(folder)
        if reason:
            found.append(f"{option}={uri}: cannot write the store there ({reason})")
        elif is_server(str(uri)):
            try:
                check_reachable(str(uri), logger.get("server_timeout") or DEFAULT_TIMEOUT, option)
            except ConfigError as err:
                found.append(str(err))
    return found


def folder_problems(config: DictConfig, multirun: bool) -> list[str]:
    """The run (or sweep) folder and the decode cache must be writable."""
    keys = ["hydra.sweep.dir" if multirun else "hydra.run.dir", "paths.cache_dir"]
    found = []
    for key in keys:
        folder = OmegaConf.select(config, key, default=None)
        reason = folder and str(folder) != "." and unwritable(str(folder))
        if reason:
            found.append(f"{key}={folder}: cannot write there ({reason})")
    return found


def timm_encoders(config: DictConfig) -> list[tuple[str, DictConfig]]:
    """(option prefix, node) of each timm encoder the run builds."""
    fusion = config.get("fusion") or {}
    names = OmegaConf.select(config, "modality.names", default=None) or []
    nodes = [("backbone", fusion.get("encoder"))]
    nodes += [(f"encoder.{m}", (fusion.get("encoders") or {}).get(m)) for m in names]
    return [
        (prefix, node)
        for prefix, node in nodes
        if isinstance(node, DictConfig) and str(node.get("_target_", "")).endswith("TimmEncoder")
    ]


def weights_problems(config: DictConfig) -> list[str]:
    """With HF_HUB_OFFLINE=1, each pretrained timm encoder without a local file must have some
    weights of its model in the Hugging Face cache: refused here, before torch is imported.
    (The loading code checks the exact file; this catches the common case within a second.)"""
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE:
        return []
    cache = Path(constants.HF_HUB_CACHE)
    missing: dict[str, list[str]] = {}  # model -> the encoders that need it
    for prefix, node in timm_encoders(config):
        if not node.get("pretrained") or node.get("weights_path"):
            continue
        name = str(node.get("name"))
        family = name.split(".")[0]  # `resnet18` is cached as timm/resnet18.<its default tag>
        repos = [
            p
            for p in cache.glob("models--timm--*")
            if p.name.removeprefix("models--timm--").split(".")[0] == family
        ]
        if not any(f.name in HUB_FILES for r in repos for f in r.glob("snapshots/*/*")):
            missing.setdefault(name, []).append(f"{prefix}.pretrained")
    return [
        f"{', '.join(options)}=true: timm model {name} has no pretrained weights in the Hugging "
        f"Face cache {cache} and HF_HUB_OFFLINE=1: run once with network access to cache them "
        "(HF_HOME), or set backbone.weights_path (encoder.<m>.weights_path)=/path/to/weights"
        for name, options in missing.items()
    ]


class Preflight(Callback):
    """Hydra callback, listed first: the options, folders and tracking store of a run (or of
    each job of a multirun) are checked before anything is created."""

    def __init__(self, check_store: bool = True) -> None:
        self.check_store = check_store

    def _refuse(self, config: DictConfig, found: list[str]) -> None:
        if found:
            # a SystemExit: Hydra lets it through without a traceback
            raise error_lines(program(config), ConfigError("\n".join(found)))

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)  # Hydra sets it only per job, later
        found = problems(config) + folder_problems(config, multirun=False)
        found += weights_problems(config)
        self._refuse(config, found or (store_problems(config) if self.check_store else []))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)
        found = folder_problems(config, multirun=True)
        self._refuse(config, found or (store_problems(config) if self.check_store else []))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Each job of a multirun has its own swept values (a run's were checked already)."""
        self._refuse(config, problems(config))
