"""mmfusion: compare how and where CT, chest X-ray and cough-sound modalities are fused.

Imports nothing, so that every layer may read `__version__` (the entry points register the
configs' resolvers: `mmfusion.cli`)."""

__version__ = "0.2.0"
