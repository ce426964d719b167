"""The model zoo: specs, weights resolution, preprocessing, target layers and reshape transforms.

::

    model = load_model("dino_resnet50", weights="pretrained_weights/")
    spec = get_spec("dino_resnet50")
    x = spec.preprocess(pil_image)[None]
    target_layers, reshape_transform = spec.cam_layers(model)

Any timm or torchvision classifier name works as well; its layers are inferred
(:func:`infer_cam_layers`).
"""

from camscope.core.capture import ReshapeTransform
from camscope.core.layer_paths import resolve_layer
from camscope.data.imagenet import IMAGENET_MEAN, IMAGENET_STD
from camscope.models import zoo as _zoo  # registers the seed models
from camscope.models.checkpoint import (
    DropPrefix,
    RenamePrefix,
    StripPrefix,
    Take,
    TimmFilter,
    Unwrap,
    read_checkpoint,
)
from camscope.models.foreign import imagenet_class_names
from camscope.models.layers import infer_cam_layers, model_input_size
from camscope.models.loading import (
    RandomWeightsWarning,
    get_spec,
    load_model,
    locate_weights,
    resolve_weights,
)
from camscope.models.mini import MINI_MODELS, register_mini_models
from camscope.models.preprocess import Preprocess
from camscope.models.reshape import ChannelsLastToFirst, TokensToGrid
from camscope.models.spec import (
    ModelSpec,
    TimmBuilder,
    TorchvisionBuilder,
    list_models,
    register_model,
    unregister_model,
)
from camscope.models.weights import ENV_VAR, Location, WeightsFile

SEED_MODELS = _zoo.SEED_MODELS
register_mini_models()  # the packaged mini zoo, beside the seed models

__all__ = [
    "ENV_VAR",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MINI_MODELS",
    "SEED_MODELS",
    "ChannelsLastToFirst",
    "DropPrefix",
    "Location",
    "ModelSpec",
    "Preprocess",
    "RandomWeightsWarning",
    "RenamePrefix",
    "ReshapeTransform",
    "StripPrefix",
    "Take",
    "TimmBuilder",
    "TimmFilter",
    "TokensToGrid",
    "TorchvisionBuilder",
    "Unwrap",
    "WeightsFile",
    "get_spec",
    "imagenet_class_names",
    "infer_cam_layers",
    "list_models",
    "load_model",
    "locate_weights",
    "model_input_size",
    "read_checkpoint",
    "register_model",
    "resolve_layer",
    "resolve_weights",
    "unregister_model",
]
