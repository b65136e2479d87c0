"""Every user-facing option's type and range, checked before a job starts.

`RULES` maps an option path to what it must hold; a path absent from an app's config is
skipped, so one table serves train, evaluate, check and compare. `*` matches any key of a
mapping (`data.layout.per_class.*`). A bound may name another option (`"backbone.min_image_size"`).
`problems(cfg)` lists every violation, one line each, naming the option and its value.

Only `omegaconf` is imported here: the check runs in a Hydra callback before torch, Lightning or
the tracking store are touched, so a bad option fails within a second or two.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mmfusion.errors import ConfigError

MODALITIES = ("ct", "cxr", "cough")
# Lightning 2.x precision names (tests/test_probes.py compares them with Lightning's own)
PRECISIONS = (
    "transformer-engine", "transformer-engine-float16", "16-true", "16-mixed", "bf16-true",
    "bf16-mixed", "32-true", "64-true", "64", "32", "16", "bf16", 64, 32, 16,
)  # fmt: skip
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
METRICS = tuple(f"val/{m}" for m in ("acc", "loss", "auroc", "f1", "precision", "recall"))
Bound = int | float | str | None
_MISSING = object()


def shown(value: Any) -> str:
    """A value as the user would type it on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, ListConfig | list | tuple):
        return f"[{', '.join(shown(v) for v in value)}]"
    if isinstance(value, DictConfig | dict):
        return "{" + ", ".join(f"{k}: {shown(v)}" for k, v in value.items()) + "}"
    return str(value)


def _bound(bound: Bound, cfg: DictConfig) -> tuple[float | None, str]:
    """A bound's value and how to name it: a number, or another option's value."""
    if bound is None or isinstance(bound, int | float):
        return bound, shown(bound)
    value = OmegaConf.select(cfg, bound, default=None)
    return value, f"{bound} ({shown(value)})"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Whole:
    """An integer in [low, high], below `below` (exclusive) when given."""

    low: Bound = None
    high: Bound = None
    below: Bound = None

    def problem(self, value: Any, cfg: DictConfig) -> str | None:
        return _range_problem(value, cfg, "an integer", self.low, self.high, self.below)


@dataclass(frozen=True)
class Real:
    """A finite number in [low, high]; `above` / `below` are exclusive bounds."""

    low: Bound = None
    high: Bound = None
    above: Bound = None
    below: Bound = None

    def problem(self, value: Any, cfg: DictConfig) -> str | None:
        if _is_number(value) and not math.isfinite(value):
            return "must be a finite number"
        return _range_problem(
            value, cfg, "a number", self.low, self.high, self.below, self.above, whole=False
        )


def _range_problem(
    value: Any,
    cfg: DictConfig,
    kind: str,
    low: Bound,
    high: Bound,
    below: Bound,
    above: Bound = None,
    whole: bool = True,
) -> str | None:
    limits = []
    for bound, word, fails in (
        (low, ">=", lambda v, b: v < b),
        (above, ">", lambda v, b: v <= b),
        (high, "<=", lambda v, b: v > b),
        (below, "<", lambda v, b: v >= b),
    ):
        number, name = _bound(bound, cfg)
        if number is not None:
            limits.append((f"{word} {name}", number, fails))
    wanted = " ".join([f"must be {kind}", " and ".join(text for text, _, _ in limits)]).strip()
    if not _is_number(value) or (whole and not isinstance(value, int)):
        return wanted
    if any(_is_number(bound) and fails(value, bound) for _, bound, fails in limits):
        return wanted
    return None


@dataclass(frozen=True)
class Flag:
    def problem(self, value: Any, cfg: DictConfig) -> str | None:
        return None if isinstance(value, bool) else "must be true or false"


@dataclass(frozen=True)
class OneOf:
    choices: tuple[Any, ...]

    def problem(self, value: Any, cfg: DictConfig) -> str | None:
        if any(value == c and type(value) is type(c) for c in self.choices):
            return None
        names = list(dict.fromkeys(shown(c) for c in self.choices))
        return f"must be {names[0]}" if len(names) == 1 else f"must be one of {', '.join(names)}"


@dataclass(frozen=True)
class Text:
    """A non-empty string."""

    def problem(self, value: Any, cfg: DictConfig) -> str | None:
        return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


@dataclass(frozen=True)
class Maybe:
    """null, or what `rule` accepts."""

    rule: Any

    def problem(self, value: Any, cfg: DictConfig) -> str | None:
        if value is None:
            return None
        reason = self.rule.problem(value, cfg)
        return reason and f"{reason}, or null"


@dataclass(frozen=True)
class Either:
    """What either rule accepts (`auto` or an integer >= 0, ...)."""

    first: Any
    second: Any

    def problem(self, value: Any, cfg: DictConfig) -> str | None:
        one, other = self.first.problem(value, cfg), self.second.problem(value, cfg)
        if one is None or other is None:
            return None
        return f"{one}, or {other.removeprefix('must be ')}"


@dataclass(frozen=True)
class Names:
    """A non-empty list of distinct names out of `choices`."""

    choices: tuple[str, ...]

    def problem(self, value: Any, cfg: DictConfig) -> str | None:
        wanted = f"must be a non-empty list of distinct names out of {', '.join(self.choices)}"
        if not isinstance(value, ListConfig | list) or not value:
            return wanted
        items = list(value)
        if len(set(map(str, items))) != len(items) or any(i not in self.choices for i in items):
            return wanted
        return None


@dataclass(frozen=True)
class Each:
    """A list whose every item `rule` accepts."""

    rule: Any

    def problem(self, value: Any, cfg: DictConfig) -> str | None:
        if not isinstance(value, ListConfig | list):
            return "must be a list"
        for item in value:
            reason = self.rule.problem(item, cfg)
            if reason:
                return f"must be a list whose items are each {reason.removeprefix('must be ')}"
        return None


@dataclass(frozen=True)
class Because:
    """`rule`, with the reason a user may not guess."""

    rule: Any
    why: str

    def problem(self, value: Any, cfg: DictConfig) -> str | None:
        reason = self.rule.problem(value, cfg)
        return reason and f"{reason} ({self.why})"


@dataclass(frozen=True)
class Requires:
    """An experiment's `requires: {group: option}`: the config groups it was written for."""

    def problem(self, value: Any, cfg: DictConfig) -> str | None:
        if not value:
            return None
        choices = OmegaConf.select(cfg, "hydra.runtime.choices", default=None) or {}
        experiment = choices.get("experiment", "this experiment")
        wrong = {g: o for g, o in value.items() if g in choices and choices[g] != o}
        if not wrong:
            return None
        group, option = next(iter(wrong.items()))
        return (
            f"experiment={experiment} is written for {group}={option}, not {group}="
            f"{choices[group]}: drop {group}={choices[group]} or choose another experiment"
        )


PROBABILITY = Real(0, 1)
POSITIVE = Real(above=0)
COUNT = Whole(low=1)

#: option path -> rule (paths absent from a config are skipped)
RULES: dict[str, Any] = {
    # the job
    "seed": Whole(low=0),
    "monitor": OneOf(METRICS),
    "monitor_mode": OneOf(("min", "max")),
    "test": Flag(),
    "split": OneOf(("train", "val", "test")),
    "requires": Requires(),
    # modalities and backbone
    "modality.names": Names(MODALITIES),
    "backbone.name": Text(),
    "backbone.pretrained": Flag(),
    "backbone.min_image_size": COUNT,
    "encoder.*.name": Text(),
    "encoder.*.pretrained": Flag(),
    "encoder.*.freeze": Flag(),
    "encoder.*.init_from": Maybe(Text()),
    "encoder.*.weights_path": Maybe(Text()),
    "backbone.weights_path": Maybe(Text()),
    # staged training (conf/training)
    "training.encoder_epochs": Maybe(COUNT),
    "training.freeze_encoders": Flag(),
    "training.unfreeze_at_epoch": Maybe(Whole(low=1, below="trainer.max_epochs")),
    "training.unfreeze_lr_factor": Real(above=0, high=1),
    "training.embedding_cache": Flag(),
    # data
    "data.decoding.image_size": Whole(low="backbone.min_image_size"),
    "data.decoding.*.size": Whole(low="backbone.min_image_size"),
    "data.decoding.*.crop": Real(above=0, high=1),
    "data.decoding.*.window.center": Real(),
    "data.decoding.*.window.width": POSITIVE,
    "data.decoding.*.window.png_hu_offset": Maybe(Whole(low=0)),
    "data.decoding.*.features.sample_rate": Whole(low=1000),
    "data.decoding.*.features.duration": POSITIVE,
    "data.decoding.*.features.n_mels": COUNT,
    "data.decoding.*.features.n_fft": Whole(low=16),
    "data.decoding.*.features.hop_length": COUNT,
    "data.decoding.*.features.top_db": POSITIVE,
    "data.decoding.*.features.n_mfcc": COUNT,
    "data.decoding.*.spectrogram_images": Flag(),
    "data.batch_size": COUNT,
    "data.num_workers": Either(OneOf(("auto",)), Whole(low=0)),
    "data.decode_workers": COUNT,
    "data.on_bad_file": OneOf(("raise", "skip")),
    "data.min_per_class.*": COUNT,
    "data.allow_leakage": Flag(),
    "data.folds": Maybe(Whole(low=2)),
    "data.fold": Maybe(Whole(low=0, below="data.folds")),
    "data.near_duplicates": OneOf(("report", "group", "drop")),
    "data.near_duplicate_distance": Whole(0, 256),
    "data.layout.seed": Whole(low=0),
    "data.layout.split_sizes.*": Real(low=0),
    "data.layout.per_class.*": Whole(low=0),
    "data.layout.image_size": Whole(low=16),
    "data.layout.finding_prob.*": PROBABILITY,
    # model and optimisation
    "model.optimizer.lr": POSITIVE,
    "model.optimizer.weight_decay": Real(low=0),
    "model.optimizer.momentum": Real(0, 1),
    "model.modality_dropout": Real(low=0, below=1),
    "model.augment.max_shift": Real(0, 0.5),
    "model.augment.intensity": Real(low=0),
    "model.augment.spec_mask": Real(0, 1),
    "model.channels_last": Flag(),
    "model.scheduler.T_max": COUNT,
    "fusion.fusion.dim": COUNT,
    "fusion.fusion.heads": COUNT,
    "fusion.fusion.layers": Whole(low=0),
    "fusion.fusion.rank": COUNT,
    "fusion.fusion.out_features": COUNT,
    "fusion.fusion.dropout": Real(0, 1, below=1),
    "fusion.head.dropout": Real(0, 1, below=1),
    "fusion.head.hidden_dim": COUNT,
    # the trainer
    "trainer.max_epochs": Because(
        COUNT, "the cosine LR schedule spans max_epochs; Lightning's -1, no limit, has no end"
    ),
    "trainer.min_epochs": Maybe(Whole(low=0, high="trainer.max_epochs")),
    "trainer.accelerator": OneOf(ACCELERATORS),
    "trainer.devices": Either(OneOf(("auto", -1)), Either(COUNT, Each(Whole(low=0)))),
    "trainer.num_nodes": COUNT,
    "trainer.precision": OneOf(PRECISIONS),
    "trainer.log_every_n_steps": COUNT,
    "trainer.num_sanity_val_steps": Whole(low=-1),
    "trainer.accumulate_grad_batches": COUNT,
    "trainer.gradient_clip_val": Maybe(Real(low=0)),
    "trainer.deterministic": Either(Flag(), OneOf(("warn",))),
    # callbacks
    "callbacks.early_stopping.patience": Whole(low=0),
    "callbacks.model_checkpoint.save_top_k": Whole(low=-1),
    "callbacks.evaluation.samples_per_class": Whole(low=0),
    "callbacks.explain.samples_per_class": Whole(low=0),
    "callbacks.explain.max_samples": Maybe(COUNT),
    "callbacks.explain.gradcam": Flag(),
    "callbacks.explain.ablation": Flag(),
    "callbacks.robustness.noise_levels": Each(Real(low=0)),
    # tracking
    "logger.mlflow.tracking_uri": Text(),
    "logger.mlflow.experiment_name": Text(),
    "logger.mlflow.server_timeout": POSITIVE,
    # python -m mmfusion.check
    "check.phash_distance": Whole(0, 256),
    "check.min_audio_seconds": Real(low=0),
    "check.silence_dbfs": Real(high=0),
    "check.confound_min_files": COUNT,
    "check.confound_alpha": Real(above=0, below=1),
    "check.confound_partial": PROBABILITY,
    "check.confound_strong": PROBABILITY,
    "check.metadata_baseline": Flag(),
    "check.max_listed": COUNT,
    "check.workers": COUNT,
    "check.json": Flag(),
    # python -m mmfusion.compare
    "tracking_uri": Text(),
    "experiment_name": Text(),
    "n_resamples": Whole(low=100),
    "log": Flag(),
}


def _paths(cfg: DictConfig, pattern: str) -> Iterator[str]:
    """The option paths `pattern` names in cfg (`*`: every key of a mapping)."""
    head, star, rest = pattern.partition(".*")
    if not star:
        if OmegaConf.select(cfg, pattern, default=_MISSING, throw_on_missing=False) is not _MISSING:
            yield pattern
        return
    node = OmegaConf.select(cfg, head, default=None)
    if isinstance(node, DictConfig):
        for key in node:
            yield from _paths(cfg, f"{head}.{key}{rest}")


def _copies_another(cfg: DictConfig, path: str) -> bool:
    """Whether the option is `${other.option}`: the other one is checked (and named) instead."""
    parent, _, key = path.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if not isinstance(node, DictConfig) or not OmegaConf.is_interpolation(node, key):
        return False
    raw = OmegaConf.to_container(node, resolve=False)[key]
    return re.fullmatch(r"\$\{[\w.]+\}", str(raw)) is not None


def problems(cfg: DictConfig, rules: Mapping[str, Any] = RULES) -> list[str]:
    """Every option that breaks its rule: `path=value: what it must be`, one line each."""
    found = []
    for pattern, rule in rules.items():
        for path in _paths(cfg, pattern):
            if _copies_another(cfg, path):
                continue
            try:
                value = OmegaConf.select(cfg, path, throw_on_missing=True)
            except Exception as err:  # an interpolation or resolver that cannot resolve
                found.append(f"{path}: cannot be resolved ({str(err).splitlines()[0]})")
                continue
            reason = rule.problem(value, cfg)
            if reason:
                found.append(
                    reason if isinstance(rule, Requires) else f"{path}={shown(value)}: {reason}"
                )
    return found


def check_options(cfg: DictConfig, rules: Mapping[str, Any] = RULES) -> None:
    """Raise one ConfigError listing every violation (one per line)."""
    found = problems(cfg, rules)
    if found:
        raise ConfigError("\n".join(found))
