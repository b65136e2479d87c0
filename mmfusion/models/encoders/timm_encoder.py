"""Any timm model as an encoder (`num_classes=0`: pooled features out)."""

from __future__ import annotations

from pathlib import Path

import timm
from torch import Tensor, nn

import mmfusion.models.encoders.simple_cnn  # noqa: F401  (registers `simple_cnn` with timm)
from mmfusion.errors import ConfigError
from mmfusion.models.encoders.base import Encoder


def create_timm_model(
    name: str, in_chans: int, pretrained: bool = False, weights_path: str | None = None
) -> nn.Module:
    """A timm model without classifier; pretrained weights only ever come from a local file."""
    if not timm.is_model(name):
        raise ConfigError(f"backbone.name={name!r} is not a timm model")
    if not pretrained:
        return timm.create_model(name, pretrained=False, in_chans=in_chans, num_classes=0)
    if not weights_path:
        raise ConfigError(
            "backbone.pretrained=true needs a local weights file (no downloads here): "
            "set backbone.weights_path=/path/to/model.safetensors|.pth|.bin"
        )
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise ConfigError(f"backbone.weights_path={path} does not exist")
    # timm loads the file with weights_only and adapts the stem to in_chans
    return timm.create_model(
        name,
        pretrained=True,
        in_chans=in_chans,
        num_classes=0,
        pretrained_cfg_overlay={"file": str(path), "num_classes": 0},
    )


class TimmEncoder(Encoder):
    """A timm backbone; `in_chans` input channels (1 for a modality's own encoder)."""

    def __init__(
        self,
        name: str = "resnet18",
        in_chans: int = 1,
        pretrained: bool = False,
        weights_path: str | None = None,
    ) -> None:
        super().__init__()
        self.body = create_timm_model(name, in_chans, pretrained, weights_path)
        # some timm models (MobileNetV3) end in a projection wider than their feature maps
        self.token_features = self.body.num_features
        self.out_features = getattr(self.body, "head_hidden_size", None) or self.token_features

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)

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
