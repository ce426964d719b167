"""Image loading and the synthetic ground-truth dataset."""

from camscope.data.images import as_rgb_array, load_image, load_image_array

__all__ = ["as_rgb_array", "load_image", "load_image_array"]
