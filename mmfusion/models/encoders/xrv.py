"""torchxrayvision's chest X-ray models as the CXR encoder (`encoder/cxr=xrv_densenet121`,
`xrv_resnet50`, `xrv_autoencoder`): DenseNet-121s trained on the public CXR collections (NIH,
PadChest, CheXpert, MIMIC-CXR, RSNA, ...), a ResNet-50 at 512 px, and a ResNet-101 autoencoder.

Weights are the library's own files, fetched and cached its way (`~/.torchxrayvision/
models_data/`, or `cache_dir`), behind the offline rule of `hub.file_weights`. Preprocessing is
the library's: its intensity range ([0, 1] -> [-1024, 1024], `xrv.utils.normalize`), its native
resolution, its centre square crop (`XRayCenterCrop`); `pretrained_input_spec` hands these to
the decoding spec, so training, predict and serving decode and normalise alike.
"""

from __future__ import annotations

import os

import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from mmfusion.errors import ConfigError
from mmfusion.models.encoders.base import Encoder
from mmfusion.models.encoders.hub import file_weights


def xrv_catalogue(weights: str) -> dict:
    """The library's entry for `weights` (url, resolution), from its model tables."""
    import torchxrayvision as xrv

    tables = {**xrv.models.model_urls, **xrv.autoencoders.model_urls}
    if weights not in tables:
        names = ", ".join(k for k in tables if "-" in k)
        raise ConfigError(
            f"encoder.cxr.weights={weights!r} is not a torchxrayvision model ({names})"
        )
    return tables[weights]


def xrv_body(weights: str, pretrained: bool, cache_dir: str | None) -> tuple[nn.Module, int]:
    """The model without its classifier (or decoder use), and its feature width."""
    import torchvision
    import torchxrayvision as xrv

    entry = xrv_catalogue(weights)
    if pretrained:
        folder = cache_dir or xrv.utils.get_cache_dir()
        path = os.path.expanduser(os.path.join(folder, os.path.basename(entry["weights_url"])))
        how = f"torchxrayvision downloads it on first use; cache_dir={folder}"
        file_weights(path, entry["weights_url"], f"torchxrayvision model {weights}", how)
    source = weights if pretrained else None
    if weights.startswith("densenet"):
        model = xrv.models.DenseNet(weights=source, cache_dir=cache_dir)
        model.op_threshs = None  # the library's calibration of its own 18 outputs
        model.classifier = nn.Identity()
        return model, model.features.norm5.num_features
    if weights.startswith("resnet"):
        if pretrained:
            model = xrv.models.ResNet(weights=weights, cache_dir=cache_dir).model
        else:  # the architecture the library builds: torchvision ResNet-50, 1-channel stem
            model = torchvision.models.resnet50(weights=None)
            model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        width = model.fc.in_features
        model.fc = nn.Identity()
        return model, width
    model = xrv.autoencoders.ResNetAE(weights=source, cache_dir=cache_dir)
    model.weights = getattr(model, "weights", source)  # the library sets it only with weights
    return model, model.layer4[-1].bn3.num_features


class XRVEncoder(Encoder):
    """A torchxrayvision model's pooled features (DenseNet-121: 1024, ResNet-50: 2048)."""

    def __init__(
        self,
        weights: str = "densenet121-res224-all",
        pretrained: bool = True,
        cache_dir: str | None = None,
        freeze: bool = False,
        init_from: str | None = None,
    ) -> None:
        super().__init__(freeze=freeze, init_from=init_from)
        self.weights = weights
        self.pretrained = pretrained
        self.body, self.out_features = xrv_body(weights, pretrained, cache_dir)
        self.token_features = self.out_features

    def feature_maps(self, x: Tensor) -> Tensor:
        if self.weights.startswith("densenet"):
            return F.relu(self.body.features(x))
        if self.weights.startswith("resnet"):
            b = self.body
            x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
            return b.layer4(b.layer3(b.layer2(b.layer1(x))))
        return self.body.encode(x, check_resolution=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(self.feature_maps(x), 1).flatten(1)

    def tokens(self, x: Tensor) -> Tensor:
        return self.feature_maps(x).flatten(2).transpose(1, 2)

    def pretrained_input_spec(self) -> dict | None:
        """The library's preprocessing: intensity range, native resolution, square crop."""
        if not self.pretrained:
            return None
        import torchxrayvision as xrv

        entry = xrv_catalogue(self.weights)
        low, high = xrv.utils.normalize(np.array([0.0, 1.0]), 1.0)  # [0, 1] -> its range
        size = int(entry.get("input_resolution") or entry.get("resolution"))
        return {
            "normalisation": {
                "mean": float(-low / (high - low)),
                "std": float(1.0 / (high - low)),
                "source": f"torchxrayvision {self.weights}",
            },
            "set": {"size": size, "square": True, "crop": 1.0},
        }
