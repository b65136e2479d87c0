"""mmfusion: compare how and where CT, chest X-ray and cough-sound modalities are fused."""

from mmfusion.training.resolvers import register as _register_resolvers

__version__ = "0.2.0"
_register_resolvers()
