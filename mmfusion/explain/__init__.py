"""Why a model decided: Grad-CAM per branch, modality weights, modality ablation."""
