"""A layout that wraps another (k-fold, near-duplicate policy): it answers what it does not
change from the wrapped layout, and stays safe to pickle and copy for loader workers."""

from __future__ import annotations

from collections.abc import Sequence


class LayoutWrapper:
    """Base of the wrappers: `prepare`, `classes` and any other attribute come from `layout`."""

    def __init__(self, layout) -> None:
        self.layout = layout

    def __getattr__(self, name: str):
        if name == "layout" or name.startswith("__"):  # not set yet (unpickling, copying)
            raise AttributeError(name)
        return getattr(self.layout, name)

    def prepare(self) -> None:
        self.layout.prepare()

    def classes(self, modalities: Sequence[str]) -> list[str]:
        return self.layout.classes(modalities)
