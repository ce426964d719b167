"""Boxes, masks and VOC files, scaled as the model's Resize + CenterCrop scales the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import transforms

from camscope.core.errors import MetricInputError
from camscope.metrics import boxes_to_mask, load_voc_boxes, transform_boxes, transform_mask

VOC = """<annotation>
  <filename>ILSVRC2012_val_00000001</filename>
  <size><width>500</width><height>375</height><depth>3</depth></size>
  <object><name>n01751748</name><bndbox><xmin>111</xmin><ymin>108</ymin><xmax>441</xmax><ymax>375</ymax></bndbox></object>
  <object><name>n01440764</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object>
</annotation>
"""


def test_load_voc_boxes(tmp_path):
    path = tmp_path / "val.xml"
    path.write_text(VOC)
    ann = load_voc_boxes(path)
    assert (ann.width, ann.height) == (500, 375)
    np.testing.assert_array_equal(ann.boxes, [[110, 107, 441, 375], [0, 0, 10, 20]])
    assert ann.names == ["n01751748", "n01440764"]
    only = load_voc_boxes(path, names=["n01440764"])
    assert only.boxes.shape == (1, 4)
    mask = boxes_to_mask(only.boxes, 375, 500)
    assert mask.sum() == 10 * 20 and mask[0, 0] and mask[19, 9] and not mask[20, 9]


def test_bad_voc_file(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text("<annotation><object/></annotation>")
    with pytest.raises(MetricInputError, match="size"):
        load_voc_boxes(path)
    with pytest.raises(MetricInputError, match="cannot read"):
        load_voc_boxes(tmp_path / "missing.xml")


@pytest.mark.parametrize(
    ("size", "resize", "crop"),
    [((500, 375), 256, 224), ((300, 400), 232, 224), ((64, 48), (40, 60), None), ((50, 40), None, 64)],
)
def test_boxes_follow_the_image_transform(size, resize, crop):
    """Draw the box into an image, run torchvision's Resize + CenterCrop on it, compare extents."""
    width, height = size
    box = np.array([[0.3 * width, 0.2 * height, 0.8 * width, 0.9 * height]]).round()
    mask = boxes_to_mask(box, height, width)
    steps = []
    if resize is not None:
        steps.append(transforms.Resize(resize, interpolation=transforms.InterpolationMode.NEAREST_EXACT))
    if crop is not None:
        steps.append(transforms.CenterCrop(crop))
    image = transforms.Compose(steps)(torch.from_numpy(mask)[None].float())[0] > 0.5
    moved = transform_boxes(box, (width, height), resize, crop)
    ys, xs = np.nonzero(image.numpy())
    np.testing.assert_allclose(moved[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=1.0)
    np.testing.assert_array_equal(transform_mask(mask, resize, crop), image.numpy())


@pytest.mark.parametrize(
    ("size", "resize", "crop"),
    [((500, 375), 256, 224), ((300, 400), 232, 224), ((64, 48), (40, 60), None), ((50, 40), None, 64)],
)
def test_boxes_go_back_onto_the_original_image(size, resize, crop):
    """``boxes_to_original`` undoes ``transform_boxes`` for a box the crop keeps whole (a detector's boxes on
    the overlay of the user's picture)."""
    from camscope.data.geometry import boxes_to_original

    width, height = size
    box = np.array([[0.4 * width, 0.4 * height, 0.6 * width, 0.55 * height]])
    moved = transform_boxes(box, (width, height), resize, crop)
    np.testing.assert_allclose(boxes_to_original(moved, height, width, resize, crop), box, atol=1e-9)


def test_box_cut_away_by_the_crop_is_dropped():
    moved = transform_boxes(np.array([[0, 0, 10, 10], [100, 100, 200, 200]]), (300, 300), 256, 224)
    assert moved.shape == (1, 4)


@pytest.mark.parametrize("box", [[0, 0, 0, 5], [-1, 0, 5, 5], [0, 0, 5, 70]])
def test_bad_boxes(box):
    with pytest.raises(MetricInputError):
        boxes_to_mask(np.array([box]), 64, 64)
