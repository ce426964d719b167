"""Migration: the peer's "Class Activation Maps for Object Detection With Faster RCNN" tutorial.

The tutorial's code cell by cell; only the lines that download (the image, ``fasterrcnn_resnet50_fpn(pretrained=True)``)
are replaced by a generated image and a seeded tiny Faster R-CNN whose feature pyramid has the five 256-channel
levels the peer's ``AblationLayerFasterRCNN`` is written for. Dropped: ``warnings.filterwarnings('ignore')`` (it
would silence the test run) and ``use_cuda=`` (removed from the peer in 1.5: both libraries reject it). A
displayed picture the tests compare is given a name (``eigencam_renormalized = Image.fromarray(...)``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from camscope.core.errors import CamscopeError, CamscopeWarning
from camscope.testing.peers import zero_faster_rcnn_ablation
from tests.compat.helpers import OURS, PEER, assert_same, migrate, run, scene
from tests.tasks.test_detection import small_faster_rcnn

SIDE = 16


def faster_rcnn() -> nn.Module:
    """The tiny detector (seed 0) with its class scores sharpened (classifier weights x 100): random weights
    score every box about 0.2, and the tutorial keeps the boxes that score 0.9."""
    model = small_faster_rcnn(SIDE)
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.weight *= 100
    return model


SETUP = """
import cv2
import numpy as np
import torch
import torchvision
from pytorch_grad_cam import AblationCAM, EigenCAM
from pytorch_grad_cam.ablation_layer import AblationLayerFasterRCNN
from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
from pytorch_grad_cam.utils.reshape_transforms import fasterrcnn_reshape_transform
from pytorch_grad_cam.utils.image import show_cam_on_image, scale_accross_batch_and_channels, scale_cam_image


def predict(input_tensor, model, device, detection_threshold):
    outputs = model(input_tensor)
    pred_classes = [coco_names[i] for i in outputs[0]['labels'].cpu().numpy()]
    pred_labels = outputs[0]['labels'].cpu().numpy()
    pred_scores = outputs[0]['scores'].detach().cpu().numpy()
    pred_bboxes = outputs[0]['boxes'].detach().cpu().numpy()

    boxes, classes, labels, indices = [], [], [], []
    for index in range(len(pred_scores)):
        if pred_scores[index] >= detection_threshold:
            boxes.append(pred_bboxes[index].astype(np.int32))
            classes.append(pred_classes[index])
            labels.append(pred_labels[index])
            indices.append(index)
    boxes = np.int32(boxes)
    return boxes, classes, labels, indices

def draw_boxes(boxes, labels, classes, image):
    for i, box in enumerate(boxes):
        color = COLORS[labels[i]]
        cv2.rectangle(
            image,
            (int(box[0]), int(box[1])),
            (int(box[2]), int(box[3])),
            color, 2
        )
        cv2.putText(image, classes[i], (int(box[0]), int(box[1] - 5)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.8, color, 2,
                    lineType=cv2.LINE_AA)
    return image

coco_names = ['__background__', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', \\
              'bus', 'train', 'truck', 'boat', 'traffic light', 'fire hydrant', 'N/A',
              'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep',
              'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'N/A', 'backpack', 'umbrella',
              'N/A', 'N/A', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard',
              'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
              'surfboard', 'tennis racket', 'bottle', 'N/A', 'wine glass', 'cup', 'fork',
              'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
              'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
              'potted plant', 'bed', 'N/A', 'dining table', 'N/A', 'N/A', 'toilet',
              'N/A', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave',
              'oven', 'toaster', 'sink', 'refrigerator', 'N/A', 'book', 'clock', 'vase',
              'scissors', 'teddy bear', 'hair drier', 'toothbrush']


# This will help us create a different color for each class
COLORS = np.random.uniform(0, 255, size=(len(coco_names), 3))

import torchvision
from PIL import Image
image = np.uint8(rgb_img_generated * 255)  # the tutorial downloads examples/both.png here
image_float_np = np.float32(image) / 255
# define the torchvision image transforms
transform = torchvision.transforms.Compose([
    torchvision.transforms.ToTensor(),
])

input_tensor = transform(image)
device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
input_tensor = input_tensor.to(device)
# Add a batch dimension:
input_tensor = input_tensor.unsqueeze(0)

model = make_model()  # the tutorial: torchvision.models.detection.fasterrcnn_resnet50_fpn(pretrained=True)
model.eval().to(device)

# Run the model and display the detections
boxes, classes, labels, indices = predict(input_tensor, model, device, 0.9)
image = draw_boxes(boxes, labels, classes, image)

# Show the image:
Image.fromarray(image)
"""

EIGEN_CAM = """
target_layers = [model.backbone]
targets = [FasterRCNNBoxScoreTarget(labels=labels, bounding_boxes=boxes)]
cam = EigenCAM(model,
               target_layers,
               reshape_transform=fasterrcnn_reshape_transform)

grayscale_cam = cam(input_tensor, targets=targets)
# Take the first image in the batch:
grayscale_cam = grayscale_cam[0, :]
cam_image = show_cam_on_image(image_float_np, grayscale_cam, use_rgb=True)
# And lets draw the boxes again:
image_with_bounding_boxes = draw_boxes(boxes, labels, classes, cam_image)
Image.fromarray(image_with_bounding_boxes)
"""

RENORMALIZE = """
def renormalize_cam_in_bounding_boxes(boxes, image_float_np, grayscale_cam):
    \"\"\"Normalize the CAM to be in the range [0, 1]
    inside every bounding boxes, and zero outside of the bounding boxes. \"\"\"
    renormalized_cam = np.zeros(grayscale_cam.shape, dtype=np.float32)
    images = []
    for x1, y1, x2, y2 in boxes:
        img = renormalized_cam * 0
        img[y1:y2, x1:x2] = scale_cam_image(grayscale_cam[y1:y2, x1:x2].copy())
        images.append(img)

    renormalized_cam = np.max(np.float32(images), axis = 0)
    renormalized_cam = scale_cam_image(renormalized_cam)
    eigencam_image_renormalized = show_cam_on_image(image_float_np, renormalized_cam, use_rgb=True)
    image_with_bounding_boxes = draw_boxes(boxes, labels, classes, eigencam_image_renormalized)
    return image_with_bounding_boxes

eigencam_renormalized = Image.fromarray(renormalize_cam_in_bounding_boxes(boxes, image_float_np, grayscale_cam))
"""

EIGEN = EIGEN_CAM + RENORMALIZE

ABLATION = """
from pytorch_grad_cam import AblationCAM
from pytorch_grad_cam.ablation_layer import AblationLayerFasterRCNN
cam = AblationCAM(model,
               target_layers,
               reshape_transform=fasterrcnn_reshape_transform,
               ablation_layer=AblationLayerFasterRCNN())

grayscale_cam = cam(input_tensor, targets=targets)[0, :]
ablationcam_renormalized = Image.fromarray(renormalize_cam_in_bounding_boxes(boxes, image_float_np, grayscale_cam))
"""

# the tutorial's last cell (the one before it is the same with 0.1)
RATIO = """
ratio_channels_to_ablate = 0.01
cam = AblationCAM(model,
               target_layers,
               reshape_transform=fasterrcnn_reshape_transform,
               ablation_layer=AblationLayerFasterRCNN(),
               ratio_channels_to_ablate=ratio_channels_to_ablate)

grayscale_cam = cam(input_tensor, targets=targets)[0, :]
Image.fromarray(renormalize_cam_in_bounding_boxes(boxes, image_float_np, grayscale_cam))
"""

GIVEN = dict(make_model=faster_rcnn, rgb_img_generated=scene(SIDE))
DRAWN = ["image", "boxes", "labels", "classes"]


def test_detections_and_eigencam(sign_corrected_peer):
    """Deliberate difference: camscope orients the principal component (see the fixture)."""
    peer, ours = migrate(SETUP + EIGEN, **GIVEN)
    assert len(ours["boxes"]) >= 1, "no box passes the tutorial's 0.9: sharpen the detector's scores more"
    assert np.asarray(ours["grayscale_cam"]).std() > 0.01
    assert_same(peer, ours, [*DRAWN, "grayscale_cam"])
    pictures = ["cam_image", "image_with_bounding_boxes"]
    assert_same(peer, ours, pictures, colored=dict.fromkeys(pictures, "grayscale_cam"))
    _name_renormalized(peer, ours, picture="eigencam_renormalized")
    assert_same(peer, ours, ["eigencam_renormalized"], colored={"eigencam_renormalized": "renormalized_cam"})


def _name_renormalized(*namespaces: dict[str, object], picture: str) -> None:
    """The displayed picture as an array, and the map it shows (``renormalized_cam``, local to the tutorial's
    function) recomputed with the namespace's own ``scale_cam_image``: its colours are compared bin by bin."""
    for ns in namespaces:
        ns[picture] = np.asarray(ns[picture])
        scale, cam = ns["scale_cam_image"], ns["grayscale_cam"]
        inside = []
        for x1, y1, x2, y2 in ns["boxes"]:
            img = np.zeros_like(cam)
            img[y1:y2, x1:x2] = scale(cam[y1:y2, x1:x2].copy())
            inside.append(img)
        ns["renormalized_cam"] = scale(np.max(np.float32(inside), axis=0))


def test_no_box_passes_the_threshold(sign_corrected_peer):
    """The tutorial's detector before sharpening: every box scores about 0.2, so ``predict`` keeps none and the
    box target is empty. EigenCAM does not read the target: both maps agree; camscope also warns, by name."""
    given = dict(GIVEN, make_model=lambda: small_faster_rcnn(SIDE))
    with pytest.warns(CamscopeWarning, match="the box target has no boxes"):
        peer, ours = migrate(SETUP + EIGEN_CAM, **given)
    assert len(ours["boxes"]) == 0
    assert_same(peer, ours, [*DRAWN, "grayscale_cam"])


@pytest.mark.slow
def test_ablationcam_with_the_faster_rcnn_ablation_layer(monkeypatch):
    """Deliberate difference: the peer's AblationLayerFasterRCNN sets an ablated channel to −1000, camscope
    zeroes it (camscope.compat.DIFFERENCES). With the peer's layer made to zero it too, the maps agree.
    Slow: 1,280 ablated detector passes per library, as the tutorial runs them."""
    from pytorch_grad_cam.ablation_layer import AblationLayerFasterRCNN

    source = SETUP + EIGEN + ABLATION
    ours = run(source, OURS, GIVEN)
    monkeypatch.setattr(AblationLayerFasterRCNN, "__call__", zero_faster_rcnn_ablation)
    zeroing = run(source, PEER, GIVEN)
    assert np.asarray(ours["grayscale_cam"]).std() > 0.01
    assert_same(zeroing, ours, ["grayscale_cam"])
    _name_renormalized(zeroing, ours, picture="ablationcam_renormalized")
    assert_same(zeroing, ours, ["ablationcam_renormalized"], colored={"ablationcam_renormalized": "renormalized_cam"})


def test_the_shipped_faster_rcnn_ablation_layer_writes_minus_1000():
    """The one change the test above makes to the peer: as shipped, its layer writes −1000 (channel 256 of
    the joined pyramid is channel 0 of level '1'), where camscope's AblationCAM writes its ablation_value, 0."""
    from pytorch_grad_cam.ablation_layer import AblationLayerFasterRCNN

    from camscope.ablation_cam import AblationCAM

    levels = {key: torch.ones(1, 256, 2, 2) for key in ("0", "1", "2", "3", "pool")}
    for call, value in ((AblationLayerFasterRCNN.__call__, -1000.0), (zero_faster_rcnn_ablation, 0.0)):
        layer = AblationLayerFasterRCNN()
        layer.set_next_batch(input_batch_index=0, activations=levels, num_channels_to_ablate=1)
        layer.indices = [256]
        out = call(layer, None)
        assert torch.all(out["1"][0, 0] == value) and torch.all(out["0"] == 1) and torch.all(out["1"][0, 1:] == 1)
    assert AblationCAM(faster_rcnn(), ["backbone"], progress=False).ablation_value == 0.0


def test_ratio_channels_to_ablate_is_refused():
    """Deliberate difference: the tutorial's last cells ablate only the channels of an SVD mask
    (``ratio_channels_to_ablate`` 0.1, 0.01) to save forward passes; camscope ablates every channel from the
    cached activation (camscope.compat.DIFFERENCES), so it refuses the ratio in one line, where the peer runs."""
    source = SETUP + EIGEN + RATIO
    peer = run(source, PEER, GIVEN)
    assert peer["grayscale_cam"].shape == (SIDE, SIDE)
    with pytest.raises(CamscopeError, match=r"ratio_channels_to_ablate must be 1\.0") as info:
        run(source, OURS, GIVEN)
    assert "\n" not in str(info.value)
