"""ImageNet normalisation statistics: the evaluation transform of all nine seed models, and the default
of every metric that works in image space. One definition, below both the zoo and the metrics."""

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
