__version__ = "0.1.0"

from .core import ensure_torchvision as _ensure_torchvision

# how torchvision's compiled ops are available here: native, stubbed (CPU torch + CUDA torchvision), absent
TORCHVISION_OPS = _ensure_torchvision()
