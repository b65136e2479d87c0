"""OmegaConf resolvers the configs use; every entry point registers them (`mmfusion.cli.tool`)
before Hydra reads a config."""

from __future__ import annotations

from omegaconf import OmegaConf

from mmfusion.training.resume import run_dir_or_exit


def gpu_precision() -> str:
    """bf16-mixed where the GPU supports bfloat16 (Ampere and later), else 16-mixed."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
        return "bf16-mixed"
    return "16-mixed"


def sync_batchnorm(accelerator: str) -> bool:
    """Sync batch-norm across ranks where PyTorch can (CUDA only; it has no CPU/gloo kernel)."""
    import torch

    if accelerator == "auto":
        return torch.cuda.is_available()
    return accelerator in ("gpu", "cuda")


def register() -> None:
    OmegaConf.register_new_resolver("mmfusion_run_dir", run_dir_or_exit, replace=True)
    OmegaConf.register_new_resolver("mmfusion.gpu_precision", gpu_precision, replace=True)
    OmegaConf.register_new_resolver("mmfusion.sync_batchnorm", sync_batchnorm, replace=True)
