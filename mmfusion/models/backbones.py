"""timm backbones as feature encoders, built from a config and an input channel count."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from timm.models import register_model
from torch import nn

from mmfusion.errors import ConfigError


class SimpleCNN(nn.Module):
    """Four conv-BN-ReLU-pool blocks and global pooling, like the public seed notebooks' CNN."""

    def __init__(self, in_chans: int = 3, num_classes: int = 0, width: int = 32, **_: object):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for i in range(4):
            out = width * 2**i
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = channels
        self.head = nn.Linear(channels, num_classes) if num_classes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


@register_model
def simple_cnn(pretrained: bool = False, **kwargs: object) -> SimpleCNN:
    """timm entry point, so the small CNN is built like every other backbone."""
    if pretrained:
        raise ConfigError("backbone=simple_cnn has no pretrained weights; set pretrained=false")
    kwargs.pop("pretrained_cfg", None)
    kwargs.pop("pretrained_cfg_overlay", None)
    return SimpleCNN(**kwargs)


@dataclass
class BackboneFactory:
    """Builds one encoder per call; pretrained weights only ever come from a local file."""

    name: str = "resnet18"
    pretrained: bool = False
    weights_path: str | None = None

    def __call__(self, in_chans: int) -> nn.Module:
        """A pooled-feature encoder (`num_classes=0`); its output width is `.out_features`."""
        encoder = self._create(in_chans)
        # some timm models (MobileNetV3) end in a projection wider than num_features
        encoder.out_features = getattr(encoder, "head_hidden_size", None) or encoder.num_features
        return encoder

    def _create(self, in_chans: int) -> nn.Module:
        if not timm.is_model(self.name):
            raise ConfigError(f"backbone.name={self.name!r} is not a timm model")
        if not self.pretrained:
            return timm.create_model(self.name, pretrained=False, in_chans=in_chans, num_classes=0)
        if not self.weights_path:
            raise ConfigError(
                "backbone.pretrained=true needs a local weights file (no downloads here): "
                "set backbone.weights_path=/path/to/model.safetensors|.pth|.bin"
            )
        path = Path(self.weights_path).expanduser()
        if not path.is_file():
            raise ConfigError(f"backbone.weights_path={path} does not exist")
        # timm loads the file with weights_only and adapts the stem to in_chans
        return timm.create_model(
            self.name,
            pretrained=True,
            in_chans=in_chans,
            num_classes=0,
            pretrained_cfg_overlay={"file": str(path), "num_classes": 0},
        )
