"""Migration: the peer's "Class Activation Maps for Semantic Segmentation" tutorial.

The tutorial's code cell by cell; only the lines that download (the image, ``deeplabv3_resnet50(pretrained=True)``)
are replaced by a generated image and a seeded DeepLabV3 on a ResNet-18 body, which keeps the tutorial's
``model.model.backbone.layer4``. Dropped, as in every scenario here: ``warnings.filterwarnings('ignore')`` (it
would silence the test run) and ``use_cuda=`` (removed from the peer in 1.5: both libraries reject it).
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3

from tests.compat.helpers import assert_same, migrate, scene, seeded

CAR = 7  # the tutorial explains 'car' of the 21 Pascal VOC classes


def deeplabv3() -> nn.Module:
    """torchvision's DeepLabV3 on a random ResNet-18 body (seed 0). The output rows of 'car' and of the class this
    random model predicts on most pixels are swapped, so that the tutorial's car mask covers part of the image."""

    def build() -> nn.Module:
        body = IntermediateLayerGetter(torchvision.models.resnet18(), {"layer4": "out"})
        return DeepLabV3(body, DeepLabHead(512, 21))

    model = seeded(build)
    with torch.no_grad():
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        x = ((torch.from_numpy(scene()) - mean) / std).permute(2, 0, 1)[None]
        most = int(torch.bincount(model(x)["out"][0].argmax(0).flatten(), minlength=21).argmax())
        last = model.classifier[-1]
        for param in (last.weight, last.bias):
            param[[CAR, most]] = param[[most, CAR]].clone()
    return model


SETUP = """
import torch
import torch.functional as F
import numpy as np
import torchvision
from PIL import Image
from pytorch_grad_cam.utils.image import show_cam_on_image, preprocess_image


image = np.uint8(rgb_img_generated * 255)  # the tutorial downloads a photo here
rgb_img = np.float32(image) / 255
input_tensor = preprocess_image(rgb_img,
                                mean=[0.485, 0.456, 0.406],
                                std=[0.229, 0.224, 0.225])
model = make_model()  # the tutorial: deeplabv3_resnet50(pretrained=True, progress=False)
model = model.eval()

if torch.cuda.is_available():
    model = model.cuda()
    input_tensor = input_tensor.cuda()

output = model(input_tensor)


class SegmentationModelOutputWrapper(torch.nn.Module):
    def __init__(self, model):
        super(SegmentationModelOutputWrapper, self).__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]

model = SegmentationModelOutputWrapper(model)
output = model(input_tensor)

normalized_masks = torch.nn.functional.softmax(output, dim=1).cpu()
sem_classes = [
    '__background__', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
    'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike',
    'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor'
]
sem_class_to_idx = {cls: idx for (idx, cls) in enumerate(sem_classes)}

car_category = sem_class_to_idx["car"]
car_mask = normalized_masks[0, :, :, :].argmax(axis=0).detach().cpu().numpy()
car_mask_uint8 = 255 * np.uint8(car_mask == car_category)
car_mask_float = np.float32(car_mask == car_category)

both_images = np.hstack((image, np.repeat(car_mask_uint8[:, :, None], 3, axis=-1)))
Image.fromarray(both_images)
"""

# the tutorial's own target class (it predates the peer's model_targets.SemanticSegmentationTarget)
OWN_TARGET = """
from pytorch_grad_cam import GradCAM

class SemanticSegmentationTarget:
    def __init__(self, category, mask):
        self.category = category
        self.mask = torch.from_numpy(mask)
        if torch.cuda.is_available():
            self.mask = self.mask.cuda()

    def __call__(self, model_output):
        return (model_output[self.category, :, : ] * self.mask).sum()
"""

# the same cell as a reader of the peer's README writes it today
LIBRARY_TARGET = """
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget
"""

EXPLAIN = """
target_layers = [model.model.backbone.layer4]
targets = [SemanticSegmentationTarget(car_category, car_mask_float)]
with GradCAM(model=model,
             target_layers=target_layers) as cam:
    grayscale_cam = cam(input_tensor=input_tensor,
                        targets=targets)[0, :]
    cam_image = show_cam_on_image(rgb_img, grayscale_cam, use_rgb=True)

Image.fromarray(cam_image)
"""

NAMES = ["output", "car_mask_float", "both_images", "grayscale_cam", "cam_image"]


def _migrate(target_cell: str) -> tuple[dict[str, object], dict[str, object]]:
    return migrate(SETUP + target_cell + EXPLAIN, make_model=deeplabv3, rgb_img_generated=scene())


def test_semantic_segmentation_tutorial():
    peer, ours = _migrate(OWN_TARGET)
    car = np.asarray(ours["car_mask_float"])
    assert 0.05 < car.mean() < 0.95, "the car mask must be neither empty nor the whole image"
    assert np.asarray(ours["grayscale_cam"]).std() > 0.01
    assert_same(peer, ours, NAMES, colored={"cam_image": "grayscale_cam"})


def test_semantic_segmentation_tutorial_with_the_library_target():
    peer, ours = _migrate(LIBRARY_TARGET)
    assert np.asarray(ours["grayscale_cam"]).std() > 0.01
    assert_same(peer, ours, NAMES, colored={"cam_image": "grayscale_cam"})
