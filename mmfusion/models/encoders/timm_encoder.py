"""Any timm model as an encoder (`num_classes=0`: pooled features out)."""

from __future__ import annotations

from pathlib import Path

import timm
from torch import Tensor, nn

import mmfusion.models.encoders.simple_cnn  # noqa: F401  (registers `simple_cnn` with timm)
from mmfusion.errors import ConfigError
from mmfusion.models.encoders.base import Encoder
from mmfusion.models.encoders.hub import HUB_FILES, hub_weights


def create_timm_model(
    name: str, in_chans: int, pretrained: bool = False, weights_path: str | None = None
) -> nn.Module:
    """A timm model without classifier. Pretrained weights: from `weights_path` (a local
    file, for air-gapped sites) or through timm's own Hugging Face Hub path (`hub_weights`:
    cached, offline-aware, never a hang). timm adapts the stem to `in_chans`."""
    if not timm.is_model(name):
        raise ConfigError(f"backbone.name={name!r} is not a timm model")
    if not pretrained:
        return timm.create_model(name, pretrained=False, in_chans=in_chans, num_classes=0)
    if weights_path:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise ConfigError(f"backbone.weights_path={path} does not exist")
        # timm loads the file with weights_only, drops its classifier (a file saved with one:
        # the pretrained config's class count differs from the model's 0) and adapts the stem
        overlay = {"file": str(path)}
        if not has_classifier(path, pretrained_cfg(name).classifier):
            overlay["num_classes"] = 0
        return timm.create_model(
            name, pretrained=True, in_chans=in_chans, num_classes=0, pretrained_cfg_overlay=overlay
        )
    cfg = pretrained_cfg(name)
    if not cfg.hf_hub_id:
        raise ConfigError(
            f"timm model {name} has no weights on the Hugging Face Hub: set {LOCAL_OPTION}"
        )
    with hub_weights(cfg.hf_hub_id, HUB_FILES, f"timm model {name}", LOCAL_OPTION):
        return timm.create_model(name, pretrained=True, in_chans=in_chans, num_classes=0)


#: how an air-gapped site gives the weights
LOCAL_OPTION = (
    "backbone.weights_path=/path/to/weights.safetensors|.pth|.bin (or encoder.<m>.weights_path)"
)


def has_classifier(path: Path, classifier: str | tuple[str, ...] | None) -> bool:
    """Whether a weights file holds the model's classifier (`<classifier>.weight`)."""
    names = (classifier,) if isinstance(classifier, str) else tuple(classifier or ())
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as handle:
            keys = set(handle.keys())
    else:
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else {}
        keys = set(state)
    return any(f"{name}.weight" in keys for name in names)


def pretrained_cfg(name: str):
    """timm's pretrained config of `name` (its default tag when none is given)."""
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(name)
    except RuntimeError as err:  # an unknown tag
        raise ConfigError(f"timm model {name}: {err}") from None
    if cfg is None:
        raise ConfigError(f"timm model {name} has no pretrained weights; set pretrained=false")
    return cfg


class TimmEncoder(Encoder):
    """A timm backbone; `in_chans` input channels (1 for a modality's own encoder).

    `grayscale_as_rgb` (a modality's own encoder): a pretrained RGB model given a 1-channel
    modality keeps its 3-channel stem as trained; the grayscale image is repeated on the three
    channels and each is normalised with the weights' own mean / std (`pretrained_input_spec`,
    recorded in the decoding spec), which is what the model saw in pretraining. Early fusion's
    stacked channels keep timm's stem adaptation and their own training statistics."""

    def __init__(
        self,
        name: str = "resnet18",
        in_chans: int = 1,
        pretrained: bool = False,
        weights_path: str | None = None,
        freeze: bool = False,
        init_from: str | None = None,
        grayscale_as_rgb: bool = False,
    ) -> None:
        super().__init__(freeze=freeze, init_from=init_from)
        self.name = name
        self.normalisation: dict | None = None
        if pretrained and in_chans == 1 and grayscale_as_rgb:
            cfg = pretrained_cfg(name)
            in_chans = cfg.input_size[0]
            source = f"timm {cfg.hf_hub_id or name}" + (
                f" ({weights_path})" if weights_path else ""
            )
            self.normalisation = {"mean": list(cfg.mean), "std": list(cfg.std), "source": source}
        self.body = create_timm_model(name, in_chans, pretrained, weights_path)
        # some timm models (MobileNetV3) end in a projection wider than their feature maps
        self.token_features = self.body.num_features
        self.out_features = getattr(self.body, "head_hidden_size", None) or self.token_features

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)

    def pretrained_input_spec(self) -> dict | None:
        return None if self.normalisation is None else {"normalisation": self.normalisation}

    def use_tokens(self) -> None:
        """Keep only what `tokens` needs: timm prunes the layers after the last feature map (a
        classifier-side projection, a final norm), whose parameters would otherwise get no
        gradient (and stall DDP)."""
        if hasattr(self.body, "prune_intermediate_layers"):
            self.body.prune_intermediate_layers(indices=1, prune_head=True)
            self.token_features = self.body.feature_info[-1]["num_chs"]

    def tokens(self, x: Tensor) -> Tensor:
        if hasattr(self.body, "forward_intermediates"):
            maps = self.body.forward_intermediates(x, indices=1, intermediates_only=True)[-1]
        else:
            maps = self.body.forward_features(x)
        return maps.flatten(2).transpose(1, 2) if maps.ndim == 4 else maps  # ViTs: (B, N, C)

    def stages(self) -> list[nn.Module]:
        info = getattr(self.body, "feature_info", None)
        if isinstance(info, list) and info and "module" in info[-1]:
            return [self.body.get_submodule(stage["module"]) for stage in info]
        return super().stages()
