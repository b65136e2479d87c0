"""The model: per-modality encoders, a fusion, a head, composed by config (`networks`), and the
LightningModule that trains any such network (`classifier`).

- `encoders/`: a modality's images or spectrograms -> pooled features (or tokens).
- `fusion/`: `{modality: features}` -> one tensor (feature level), or `{modality: input}` -> one
  image (input level, early fusion); small modules with their widths declared.
- `heads`: the fused tensor -> class logits.
May import `mmfusion.errors` only (and each other); never data, training, evaluation or the CLI.
"""
