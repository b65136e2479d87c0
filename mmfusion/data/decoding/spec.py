"""The decoding spec: every parameter that turns one modality's file into the model's input,
with the normalisation statistics fitted on the training split.

Training builds it once (from `data.decoding`), fits the statistics, and saves it in the
checkpoint and the MLflow model; evaluate, predict, serving, the app and the explain tools read it
back from there (`DecodingSpec.from_dict`) and decode exactly as training did.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmfusion.data.decoding.audio import MFCC, ASTFilterbank, LogMel, read_audio
from mmfusion.data.decoding.content import identify_kind, refuse_other_kind
from mmfusion.data.decoding.images import read_image
from mmfusion.data.decoding.window import CTWindow
from mmfusion.data.layouts.folders import IMAGE_EXTS
from mmfusion.errors import ConfigError, DataError


@dataclass(frozen=True)
class Normalisation:
    """Mean and std of the decoded inputs (in [0, 1] units for images): fitted on the training
    split (`source="train"`), or fixed by the modality's encoder (`source` names it: a pretrained
    model's own statistics, or those of the run an encoder was transferred from), and then never
    re-fitted. Per-channel statistics (one value per channel of an RGB-pretrained model) mean
    that the grayscale input is repeated on that many channels, each normalised with its own."""

    mean: float | tuple[float, ...] = 0.0
    std: float | tuple[float, ...] = 1.0
    source: str = "train"

    def __post_init__(self) -> None:
        for name in ("mean", "std"):  # lists from JSON / YAML: tuples, so the spec stays hashable
            value = getattr(self, name)
            if isinstance(value, list | tuple):
                object.__setattr__(self, name, tuple(float(v) for v in value))

    @property
    def channels(self) -> int:
        """How many channels the encoder reads (the grayscale input repeated that often)."""
        return len(self.mean) if isinstance(self.mean, tuple) else 1

    @property
    def fixed(self) -> bool:
        return self.source != "train"


@dataclass(frozen=True)
class ImageDecoding:
    """An image modality: its central `crop` fraction resized to `size` x `size` grayscale;
    `square`: the central square of the long side taken first (torchxrayvision's
    `XRayCenterCrop`), so the aspect ratio is kept; `window` maps CT Hounsfield units (DICOM;
    16-bit PNG / TIFF with a known offset) to [0, 1]."""

    kind: ClassVar[str] = "image"
    size: int = 64
    crop: float = 1.0
    window: CTWindow | None = None
    normalisation: Normalisation | None = None
    square: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.crop <= 1.0:
            raise ConfigError(f"decoding crop={self.crop}: use a fraction in (0, 1]")

    @property
    def accepts(self) -> tuple[str, ...]:
        """The kinds of file content this decoding reads (`content.identify`)."""
        return ("image",)

    def decode(self, path: Path) -> np.ndarray:
        return read_image(path, self.size, self.window, self.crop, self.square)


@dataclass(frozen=True)
class AudioDecoding:
    """An audio modality: the loudest `features.duration` seconds at `features.sample_rate`, as a
    log-mel (or MFCC) map resized to `size` x `size` (or, for a pretrained audio model's own
    features such as `ASTFilterbank`, the model's frames x bins, not resized).
    `spectrogram_images`: the files may also be spectrograms stored as images (the Kaggle
    CXR-CT-Cough copy stores coughs as JPGs)."""

    kind: ClassVar[str] = "audio"
    size: int = 64
    features: LogMel | ASTFilterbank = field(default_factory=LogMel)
    spectrogram_images: bool = False
    normalisation: Normalisation | None = None

    @property
    def accepts(self) -> tuple[str, ...]:
        return ("audio", "image") if self.spectrogram_images else ("audio",)

    def decode(self, path: Path) -> np.ndarray:
        if identify_kind(path) == "image" or path.suffix.lower() in IMAGE_EXTS:
            if not self.spectrogram_images:
                raise DataError(
                    f"{path} is an image, not audio (if your cough files are spectrogram "
                    "images, set data.decoding.cough.spectrogram_images=true)"
                )
            return read_image(path, self.size)
        return read_audio(path, self.features, self.size)


ModalityDecoding = ImageDecoding | AudioDecoding
SPECTROGRAM_HINT = (
    " (if these are spectrogram images, set data.decoding.{modality}.spectrogram_images=true)"
)
KINDS: dict[str, type] = {"image": ImageDecoding, "audio": AudioDecoding}
FEATURES: dict[str, type] = {"LogMel": LogMel, "MFCC": MFCC, "ASTFilterbank": ASTFilterbank}


@dataclass(frozen=True)
class DecodingSpec:
    """{modality: its decoding}, for the modalities a model uses."""

    by_modality: Mapping[str, ModalityDecoding]

    @classmethod
    def of(cls, image_size: int | None = None, **by_modality: ModalityDecoding) -> DecodingSpec:
        """Hydra's entry (`data.decoding`): `image_size` is the shorthand each modality's `size`
        interpolates; the other keys are modalities."""
        if image_size is not None and image_size < 8:
            raise ConfigError(f"data.decoding.image_size={image_size}: use 8 or more pixels")
        return cls(dict(by_modality))

    def __getitem__(self, modality: str) -> ModalityDecoding:
        try:
            return self.by_modality[modality]
        except KeyError:
            known = ", ".join(self.by_modality)
            raise ConfigError(f"no decoding for modality {modality!r} (known: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_modality)

    def only(self, modalities: list[str]) -> DecodingSpec:
        """The spec of the modalities a run uses."""
        return DecodingSpec({m: self[m] for m in modalities})

    def decode(self, modality: str, path: str | Path) -> np.ndarray:
        """One file of `modality` as its 2-D array (uint8 image or float16 spectrogram)."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"cannot read {path}: not a file")
        if path.stat().st_size == 0:
            raise DataError(f"cannot read {path}: empty file")
        decoding = self[modality]
        # an MP3 in the CT folder, a PNG given as a cough: refused naming what the file is
        hint = SPECTROGRAM_HINT.format(modality=modality) if decoding.kind == "audio" else ""
        refuse_other_kind(path, modality, decoding.accepts, hint)
        return decoding.decode(path)

    def fitted(self, stats: Mapping[str, tuple[float, float]]) -> DecodingSpec:
        """The same spec with each modality's normalisation statistics set, except where the
        modality's encoder fixed them (`for_encoders`): those are never re-fitted."""
        return DecodingSpec(
            {
                m: d
                if d.normalisation is not None and d.normalisation.fixed
                else replace(d, normalisation=Normalisation(*map(float, stats[m])))
                for m, d in self.by_modality.items()
            }
        )

    def for_encoders(self, inputs: Mapping[str, Mapping[str, Any] | None]) -> DecodingSpec:
        """The spec as the modalities' encoders need it. `inputs[m]` (plain data, from
        `Encoder.input_spec`): `normalisation` ({mean, std, source}: fixed, never re-fitted),
        `set` (decoding parameters the encoder's own preprocessing sets, e.g. torchxrayvision's
        224 px and square crop, or an audio model's sample rate and features) and `require`
        (parameters that must already match, e.g. those of the run an encoder was transferred
        from; a mismatch is one ConfigError naming the parameter)."""
        by_modality = dict(self.by_modality)
        for modality, needs in inputs.items():
            if not needs or modality not in by_modality:
                continue
            decoding = by_modality[modality]
            params = {k: v for k, v in dict(needs.get("set") or {}).items()}
            if isinstance(params.get("features"), Mapping):
                features = dict(params["features"])
                params["features"] = FEATURES[features.pop("kind")](**features)
            decoding = replace(decoding, **params)
            _check_required(modality, decoding, needs.get("require") or {}, needs.get("source"))
            if needs.get("normalisation") is not None:
                decoding = replace(decoding, normalisation=Normalisation(**needs["normalisation"]))
            by_modality[modality] = decoding
        return DecodingSpec(by_modality)

    def normalisation(self, modality: str) -> Normalisation:
        fitted = self[modality].normalisation
        if fitted is None:
            raise ConfigError(f"the decoding of {modality} has no normalisation fitted")
        return fitted

    def cache_params(self, modality: str) -> dict[str, Any]:
        """What the decoded array depends on (not the statistics fitted from it)."""
        params = self.to_dict()[modality]
        params.pop("normalisation")
        return params

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain data (checkpoints are read weights-only; MLflow models store JSON)."""
        data = {}
        for modality, decoding in self.by_modality.items():
            params = {"kind": decoding.kind, **asdict(decoding)}
            if isinstance(decoding, AudioDecoding):
                params["features"] = decoding.features.params()  # names LogMel or MFCC
            data[modality] = params
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> DecodingSpec:
        by_modality = {}
        for modality, params in data.items():
            params = dict(params)
            decoding = KINDS[params.pop("kind")]
            if params.get("normalisation") is not None:
                params["normalisation"] = Normalisation(**params["normalisation"])
            if params.get("window") is not None:
                params["window"] = CTWindow(**params["window"])
            if "features" in params:
                features = dict(params["features"])
                params["features"] = FEATURES[features.pop("kind")](**features)
            by_modality[modality] = decoding(**params)
        return cls(by_modality)


def _check_required(
    modality: str, decoding: ModalityDecoding, required: Mapping[str, Any], source: str | None
) -> None:
    """Every parameter in `required` (plain data, as `to_dict` writes it) equals the decoding's."""
    here = DecodingSpec({modality: decoding}).cache_params(modality)
    for name, wanted in required.items():
        if name in ("normalisation", "kind"):
            continue
        if _plain(here.get(name)) != _plain(wanted):
            origin = f" ({source})" if source else ""
            raise ConfigError(
                f"the encoder of {modality}{origin} was trained on inputs decoded with "
                f"{name}={_plain(wanted)}, this run decodes {name}={_plain(here.get(name))}: set "
                f"data.decoding.{modality}.{name} to match"
            )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
