"""Fusion modules: `{modality: features}` in, one tensor out (`out_features` wide), each built
from the widths of the encoders it fuses (`in_features`). Early fusion's modules fuse inputs
instead (`{modality: image}` -> one multi-channel image, `out_channels` deep).

A sample may lack a modality: `present[m]` is a bool (B,) mask, and a modality with no tensor
at all is absent for the whole batch. Fusions never read an absent modality's values.
"""
