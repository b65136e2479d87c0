"""A small CNN like the public seed notebooks', registered with timm so that it is built, listed
and overridden like every other backbone (`backbone=simple_cnn`)."""

from __future__ import annotations

import torch
from timm.models import register_model
from torch import nn

from mmfusion.errors import ConfigError


class SimpleCNN(nn.Module):
    """Four conv-BN-ReLU-pool blocks and global pooling."""

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

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


@register_model
def simple_cnn(pretrained: bool = False, **kwargs: object) -> SimpleCNN:
    """timm entry point."""
    if pretrained:
        raise ConfigError("backbone=simple_cnn has no pretrained weights; set pretrained=false")
    kwargs.pop("pretrained_cfg", None)
    kwargs.pop("pretrained_cfg_overlay", None)
    return SimpleCNN(**kwargs)
