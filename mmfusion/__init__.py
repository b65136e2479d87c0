"""mmfusion: compare how and where CT, chest X-ray and cough-sound modalities are fused."""

__version__ = "0.1.0"
