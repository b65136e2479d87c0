"""The Hydra plugin entry of `mmfusion.training.search.OptunaSearch` (the logic lives there)."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    """Optuna (current, ask / tell) over Hydra jobs; see mmfusion/search.py."""

    def __init__(self, **kwargs: Any) -> None:
        from mmfusion.training.search import OptunaSearch

        self.search = OptunaSearch(**kwargs)

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.search.sweep(arguments)
