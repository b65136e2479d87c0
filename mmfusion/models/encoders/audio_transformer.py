"""The Audio Spectrogram Transformer (Gong et al. 2021) trained on AudioSet, through
transformers and the Hugging Face cache, as the cough encoder (`encoder/cough=ast`).

It reads its own input: a 128-bin Kaldi-style log-mel filter bank of 10.24 s at 16 kHz,
normalised with the mean and std of its training (both from its `ASTFeatureExtractor`);
`pretrained_input_spec` puts these in the decoding spec (`ASTFilterbank`), so the cough files
are decoded at the sample rate the model was trained on, in training, predict and serving.
"""

from __future__ import annotations

from torch import Tensor

from mmfusion.models.encoders.base import Encoder
from mmfusion.models.encoders.hub import hub_weights

HUB_FILES = ("model.safetensors", "pytorch_model.bin")


class AudioSpectrogramTransformer(Encoder):
    """(B, 1, frames, bins) filter banks -> the pooled [CLS] + distillation token (B, hidden)."""

    def __init__(
        self,
        name: str = "MIT/ast-finetuned-audioset-10-10-0.4593",
        pretrained: bool = True,
        freeze: bool = False,
        init_from: str | None = None,
    ) -> None:
        from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

        super().__init__(freeze=freeze, init_from=init_from)
        self.name = name
        self.pretrained = pretrained
        what = f"audio model {name}"
        # without pretrained weights (a trained model rebuilt from its checkpoint) only the
        # architecture (config.json) is read from the cache
        files = HUB_FILES if pretrained else ("config.json",)
        with hub_weights(name, files, what, "encoder.cough.name=/path/to/local/model/folder"):
            if pretrained:
                self.body = ASTModel.from_pretrained(name)
                extractor = ASTFeatureExtractor.from_pretrained(name)
                self.extractor = {
                    "mean": extractor.mean,
                    "std": extractor.std,
                    "sample_rate": extractor.sampling_rate,
                }
            else:
                self.body = ASTModel(ASTConfig.from_pretrained(name))
        config = self.body.config
        self.frames, self.bins = config.max_length, config.num_mel_bins
        self.out_features = self.token_features = config.hidden_size

    def forward(self, x: Tensor) -> Tensor:
        return self.body(input_values=x[:, 0]).pooler_output

    def tokens(self, x: Tensor) -> Tensor:
        return self.body(input_values=x[:, 0]).last_hidden_state

    def pretrained_input_spec(self) -> dict | None:
        if not self.pretrained:
            return None
        features = {
            "kind": "ASTFilterbank",
            "sample_rate": int(self.extractor["sample_rate"]),
            "num_mel_bins": self.bins,
            "max_length": self.frames,
        }
        # the extractor's own normalisation is (x - mean) / (2 std)
        normalisation = {
            "mean": float(self.extractor["mean"]),
            "std": float(2 * self.extractor["std"]),
            "source": f"transformers ASTFeatureExtractor of {self.name}",
        }
        return {"normalisation": normalisation, "set": {"features": features}}
