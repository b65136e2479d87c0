"""Encoders: one modality's input (B, C, H, W) -> pooled features (B, out_features), built from
their own config node (`encoder/ct`, `encoder/cxr`, `encoder/cough`; early fusion's single
encoder from `backbone`)."""
