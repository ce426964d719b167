"""Image loading and the synthetic ground-truth dataset."""

from camscope.data.images import as_rgb_array, load_image, load_image_array
from camscope.data.synthetic import CLASS_NAMES, SyntheticBatch, generate

__all__ = ["CLASS_NAMES", "SyntheticBatch", "as_rgb_array", "generate", "load_image", "load_image_array"]
