"""Migration: the peer's Deep Feature Factorization and "Pixel Attribution for embeddings" tutorials."""

from __future__ import annotations

import types

import matplotlib
import numpy as np
import pytest

from tests.compat.helpers import OURS, PEER, assert_same, migrate, resnet18, run, scene

LABELS = {i: f"class {i}, kind {i % 7}, group {i % 3}, extra" for i in range(300)}

DFF = """
import numpy as np
import torch
from PIL import Image
from pytorch_grad_cam import DeepFeatureFactorization
from pytorch_grad_cam.utils.image import show_factorization_on_image, create_labels_legend, preprocess_image

model = make_model()
rgb_img_float = rgb_img
img = np.uint8(rgb_img_float * 255)
input_tensor = preprocess_image(rgb_img_float, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
dff = DeepFeatureFactorization(model=model, target_layer=model.layer4, computation_on_concepts=model.fc)
concepts, batch_explanations, concept_outputs = dff(input_tensor, n_components)
concept_outputs = torch.softmax(torch.from_numpy(concept_outputs), axis=-1).numpy()
concept_label_strings = create_labels_legend(concept_outputs, labels=labels, top_k=2)
visualization = show_factorization_on_image(rgb_img_float, batch_explanations[0].copy(), image_weight=0.3,
                                            concept_labels=concept_label_strings)
result = np.hstack((img, visualization))
"""


@pytest.mark.parametrize("n_components", [2, 5])
def test_deep_feature_factorization_tutorial(n_components, peer_colormap_lookup):
    peer, ours = migrate(DFF, make_model=resnet18, rgb_img=scene(), labels=LABELS, n_components=n_components)
    names = ["concepts", "batch_explanations", "concept_outputs", "concept_label_strings", "visualization"]
    assert_same(peer, ours, [*names, "result"])


def test_show_factorization_on_image_works_on_current_matplotlib():
    """Deliberate difference: without ``colors`` the peer calls ``matplotlib.cm.get_cmap`` (gone since 3.9)."""
    given = dict(make_model=resnet18, rgb_img=scene(), labels=LABELS, n_components=3)
    if not hasattr(matplotlib.cm, "get_cmap"):
        with pytest.raises(AttributeError, match="get_cmap"):
            run(DFF, PEER, given)
    assert run(DFF, OURS, given)["visualization"].dtype.name == "uint8"


RUN_DFF = """
import numpy as np
from PIL import Image
from pytorch_grad_cam import run_dff_on_image
from pytorch_grad_cam.utils.image import preprocess_image

model = make_model()
model.config = config
img_pil = Image.fromarray(np.uint8(rgb_img * 255))
img_tensor = preprocess_image(rgb_img, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])[0]
picture = run_dff_on_image(model=model, target_layer=model.layer4, classifier=model.fc, img_pil=img_pil,
                           img_tensor=img_tensor, reshape_transform=None, n_components=3, top_k=2)
"""


def test_run_dff_on_image(peer_colormap_lookup):
    config = types.SimpleNamespace(id2label=LABELS)
    peer, ours = migrate(RUN_DFF, make_model=resnet18, rgb_img=scene(), config=config)
    assert_same(peer, ours, ["picture"])


# The tutorial's code; only the lines that download change: get_image_from_url takes a generated picture, not
# a URL (and resizes to 64, not 512), and resnet50(pretrained=True) is a seeded ResNet-18.
EMBEDDINGS = """
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image, preprocess_image
import numpy as np
import torch
import cv2
import torchvision
from PIL import Image


class ResnetFeatureExtractor(torch.nn.Module):
    def __init__(self, model):
        super(ResnetFeatureExtractor, self).__init__()
        self.model = model
        self.feature_extractor = torch.nn.Sequential(*list(self.model.children())[:-1])

    def __call__(self, x):
        return self.feature_extractor(x)[:, :, 0, 0]


resnet = make_model()
resnet.eval()
model = ResnetFeatureExtractor(resnet)


def get_image_from_url(url):
    img = np.uint8(pictures[url] * 255)
    img = cv2.resize(img, (64, 64))
    rgb_img_float = np.float32(img) / 255
    input_tensor = preprocess_image(rgb_img_float,
                                   mean=[0.485, 0.456, 0.406],
                                   std=[0.229, 0.224, 0.225])
    return img, rgb_img_float, input_tensor

car_img, car_img_float, car_tensor = get_image_from_url("car")
cloud_img, cloud_img_float, cloud_tensor = get_image_from_url("clouds")
car_concept_features = model(car_tensor)[0, :]
cloud_concept_features = model(cloud_tensor)[0, :]
Image.fromarray(np.hstack((cloud_img, car_img)))


class SimilarityToConceptTarget:
    def __init__(self, features):
        self.features = features

    def __call__(self, model_output):
        cos = torch.nn.CosineSimilarity(dim=0)
        return cos(model_output, self.features)

class DifferenceFromConceptTarget:
    def __init__(self, features):
        self.features = features

    def __call__(self, model_output):
        cos = torch.nn.CosineSimilarity(dim=0)
        return 1 - cos(model_output, self.features)


image, image_float, input_tensor = get_image_from_url("both")
target_layers = [resnet.layer4[-1]]
car_targets = [SimilarityToConceptTarget(car_concept_features)]
not_car_targets = [DifferenceFromConceptTarget(car_concept_features)]

# Where is the car in the image
with GradCAM(model=model,
             target_layers=target_layers) as cam:
    car_grayscale_cam = cam(input_tensor=input_tensor,
                        targets=car_targets)[0, :]
car_cam_image = show_cam_on_image(image_float, car_grayscale_cam, use_rgb=True)
Image.fromarray(car_cam_image)

# Where is the car not in the image
with GradCAM(model=model,
             target_layers=target_layers) as cam:
    not_car_grayscale_cam = cam(input_tensor=input_tensor,
                        targets=not_car_targets)[0, :]
not_car_cam_image = show_cam_on_image(image_float, not_car_grayscale_cam, use_rgb=True)
Image.fromarray(not_car_cam_image)

cloud_targets = [SimilarityToConceptTarget(cloud_concept_features)]
not_cloud_targets = [DifferenceFromConceptTarget(cloud_concept_features)]

# Where is the cloud in the image
with GradCAM(model=model,
             target_layers=target_layers) as cam:
    cloud_grayscale_cam = cam(input_tensor=input_tensor,
                        targets=cloud_targets)[0, :]
cloud_cam_image = show_cam_on_image(image_float, cloud_grayscale_cam, use_rgb=True)
Image.fromarray(cloud_cam_image)
"""


def test_pixel_attribution_for_embeddings():
    pictures = {"both": scene(seed=0), "car": scene(seed=1), "clouds": scene(seed=2)}
    peer, ours = migrate(EMBEDDINGS, make_model=resnet18, pictures=pictures)
    maps = {f"{name}_cam_image": f"{name}_grayscale_cam" for name in ("car", "not_car", "cloud")}
    for name in maps.values():
        assert np.asarray(ours[name]).std() > 0.01, name
    assert_same(peer, ours, [*maps.values(), *maps], colored=maps)
