"""The metrics on segmentation models and detectors: they score through the target the map explains.

Each value is held to an oracle computed here by hand, one image and one step at a time: the segmentation
target is the class's logits summed over its region, the box target pytorch-grad-cam's formula (IoU plus
score of the detection that overlaps the box most, if the label matches and the IoU exceeds 0.5).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torchvision

import camscope
from camscope.core.errors import CamscopeError, CamscopeWarning
from camscope.core.targets import BoxScoreTarget, SegmentationTarget
from camscope.models import ModelSpec, Preprocess
from camscope.pipeline import model_and_batch
from tests.tasks.conftest import seeing_detector, torchvision_task_model

SEG_SIDE, DET_SIDE = 64, 128  # the smallest inputs whose target layers give maps of several cells
Score = Callable[[torch.Tensor], float]  # one normalised image (C, H, W) -> its target's score


@pytest.fixture(scope="module")
def seg() -> torch.nn.Module:
    model = torchvision_task_model("lraspp_mobilenet_v3_large", num_classes=3)
    model.camscope_spec = ModelSpec(  # a small input keeps the test quick
        "lraspp", "lraspp", build=lambda: model, preprocess=Preprocess(SEG_SIDE, (SEG_SIDE, SEG_SIDE))
    )
    return model


@pytest.fixture(scope="module")
def det() -> torch.nn.Module:
    return seeing_detector(DET_SIDE)


def picture(side: int) -> np.ndarray:
    return (np.random.default_rng(1).random((side, side, 3)) * 255).astype(np.uint8)


def predicted_class(model: torch.nn.Module, x: torch.Tensor) -> int:
    """The class the model predicts on most pixels of one image."""
    with torch.no_grad():
        predicted = model(x[None])["out"][0].argmax(0)
    return int(torch.bincount(predicted.flatten()).argmax())


def segmentation_score(model: torch.nn.Module, category: int, region: np.ndarray) -> Score:
    def score(x: torch.Tensor) -> float:
        with torch.no_grad():
            out = model(x[None])["out"][0, category]
        return float((out.numpy().astype(np.float64) * region).sum())

    return score


def box_score(model: torch.nn.Module, labels: list[int], boxes: np.ndarray) -> Score:
    def score(x: torch.Tensor) -> float:
        with torch.no_grad():
            found = model(x[None])[0]
        total = 0.0
        for label, box in zip(labels, boxes):
            if len(found["boxes"]) == 0:
                continue
            ious = torchvision.ops.box_iou(torch.as_tensor(box, dtype=torch.float32)[None], found["boxes"])[0]
            best = int(ious.argmax())
            if float(ious[best]) > 0.5 and int(found["labels"][best]) == label:
                total += float(ious[best]) + float(found["scores"][best])
        return total

    return score


def deletion_oracle(score: Score, x: torch.Tensor, heat: np.ndarray, step: int) -> np.ndarray:
    """The target's score after zeroing (RISE's substrate) the ``k * step`` top pixels of the map, k = 0..K."""
    order = np.argsort(-heat.ravel(), kind="stable")
    pixels = heat.size
    curve = []
    for k in range(-(-pixels // step) + 1):
        removed = np.zeros(pixels, bool)
        removed[order[: k * step]] = True
        curve.append(score(torch.where(torch.from_numpy(removed.reshape(heat.shape)), 0.0, x)))
    return np.array(curve)


def avgdrop_oracle(score: Score, x: torch.Tensor, heat: np.ndarray) -> float:
    """Grad-CAM++'s drop in %: the map times the image against the image (a detector is fed [0, 1]
    images, mean 0 and std 1, so image space is its input space)."""
    clean, explained = score(x), score(x * torch.from_numpy(heat))
    return 100 * max(0.0, clean - explained) / clean


def test_segmentation_deletion_scores_the_explained_region(seg: torch.nn.Module) -> None:
    image = picture(SEG_SIDE)
    x = model_and_batch(seg, image).x[0]
    category = predicted_class(seg, x)
    region = np.zeros((SEG_SIDE, SEG_SIDE), np.float32)
    region[8:40, 16:56] = 1.0
    target = SegmentationTarget(category, region)
    explanation = camscope.explain(seg, image, "gradcam", target)
    assert isinstance(explanation, camscope.Explanation) and explanation.scored is target
    step = SEG_SIDE * SEG_SIDE // 4
    scores = camscope.evaluate(seg, image, explanation, ["deletion"], step=step)  # targets from the explanation
    expected = deletion_oracle(segmentation_score(seg, category, region), x, explanation.map, step)
    assert np.ptp(expected) > 1e-3  # the curve moves: the oracle tells maps apart
    np.testing.assert_allclose(scores.curves["deletion_auc"][1][0], expected, rtol=1e-4, atol=1e-4)
    auc = (expected.sum() - expected[0] / 2 - expected[-1] / 2) / (len(expected) - 1)
    assert scores["deletion_auc"][0] == pytest.approx(auc, rel=1e-4, abs=1e-4)
    # the class alone would score the pixels where the model predicts it: a different curve
    by_class = camscope.evaluate(seg, image, explanation.map[None], ["deletion"], category, step=step)
    assert not np.allclose(by_class.curves["deletion_auc"][1][0], expected, atol=1e-3)
    assert scores.score == by_class.score == "class score summed over the region"  # the curves' y axis


def test_segmentation_class_target_is_bound_to_its_predicted_pixels(seg: torch.nn.Module) -> None:
    image = picture(SEG_SIDE)
    x = model_and_batch(seg, image).x[0]
    category = predicted_class(seg, x)
    with torch.no_grad():
        predicted = seg(x[None])["out"][0].argmax(0).numpy()
    explanation = camscope.explain(seg, image, "gradcam")  # None: the class on most pixels, where predicted
    assert isinstance(explanation, camscope.Explanation) and explanation.target == category
    scores = camscope.evaluate(seg, image, explanation, ["avgdrop"], space="normalized")
    score = segmentation_score(seg, category, (predicted == category).astype(np.float64))
    clean, explained = score(x), score(x * torch.from_numpy(explanation.map))
    assert clean > 0, "the test needs a positive clean score (a drop is a fraction of it)"
    assert scores["avg_drop"][0] == pytest.approx(100 * max(0.0, clean - explained) / clean, rel=1e-4, abs=1e-4)
    assert scores["increase"][0] == 100.0 * (explained > clean)


@pytest.fixture(scope="module")
def found(det: torch.nn.Module) -> tuple[list[int], np.ndarray]:
    """Two of the detector's own detections on the picture: their labels and boxes."""
    with torch.no_grad():
        out = det(model_and_batch(det, picture(DET_SIDE)).x)[0]
    assert len(out["boxes"]) >= 2, "the random detector found too few boxes for the test"
    return [int(v) for v in out["labels"][:2]], out["boxes"][:2].numpy()


def test_detector_deletion_and_average_drop_score_the_boxes(
    det: torch.nn.Module, found: tuple[list[int], np.ndarray]
) -> None:
    image = picture(DET_SIDE)
    x = model_and_batch(det, image).x[0]
    labels, boxes = found
    target = BoxScoreTarget(labels, boxes)
    explanation = camscope.explain(det, image, "eigencam", target)
    assert isinstance(explanation, camscope.Explanation) and explanation.scored is target
    step = DET_SIDE * DET_SIDE // 4
    scores = camscope.evaluate(det, image, explanation, ["deletion", "avgdrop"], step=step)
    score = box_score(det, labels, boxes)
    expected = deletion_oracle(score, x, explanation.map, step)
    assert expected[0] > 2 and np.ptp(expected) > 0.1  # both boxes matched on the clean image, lost on the way
    np.testing.assert_allclose(scores.curves["deletion_auc"][1][0], expected, rtol=1e-4, atol=1e-4)
    assert scores["avg_drop"][0] == pytest.approx(avgdrop_oracle(score, x, explanation.map), abs=1e-3)
    assert scores.score == "matched detection's IoU + score"  # the curves' y axis


def test_a_box_without_labels_is_scored_as_explained(det: torch.nn.Module, found: tuple[list[int], np.ndarray]) -> None:
    image = picture(DET_SIDE)
    x = model_and_batch(det, image).x[0]
    labels, boxes = found  # the second detection's box: "every confident detection" would score the first
    explanation = camscope.explain(det, image, "eigencam", BoxScoreTarget(None, boxes[1:]))
    assert isinstance(explanation, camscope.Explanation) and explanation.target is None
    step = DET_SIDE * DET_SIDE // 2
    scores = camscope.evaluate(det, image, explanation, ["deletion"], step=step)
    expected = deletion_oracle(box_score(det, labels[1:], boxes[1:]), x, explanation.map, step)
    np.testing.assert_allclose(scores.curves["deletion_auc"][1][0], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("task", ["segmentation", "detection"])
def test_road_scores_the_target_on_the_imputed_images(
    task: str,
    seg: torch.nn.Module,
    det: torch.nn.Module,
    found: tuple[list[int], np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pytorch-grad-cam's ROAD (compat mode: imputed on the normalised tensor, the change from the clean score)."""
    if task == "segmentation":
        model, side, method = seg, SEG_SIDE, "gradcam"
        region = np.ones((side, side), np.float32)
        target: object = SegmentationTarget(2, region)
        score = segmentation_score(seg, 2, region)
    else:
        model, side, method = det, DET_SIDE, "eigencam"
        target = BoxScoreTarget(*found)
        score = box_score(det, *found)
    image = picture(side)
    x = model_and_batch(model, image).x[0]
    imputed: list[torch.Tensor] = []
    road = importlib.import_module("camscope.metrics.road")
    impute = road.impute_batch

    def recording(*args: object, **kwargs: object) -> torch.Tensor:
        out = impute(*args, **kwargs)  # type: ignore[arg-type]
        imputed.extend(out)
        return out

    monkeypatch.setattr(road, "impute_batch", recording)
    explanation = camscope.explain(model, image, method, target)
    assert isinstance(explanation, camscope.Explanation)
    settings = {"percentages": (20, 60), "compat": "pytorch-grad-cam", "noise": 0.0}
    scores = camscope.evaluate(model, image, explanation, ["road"], **settings)
    assert len(imputed) == 4  # LeRF at 20 and 60 %, then MoRF
    clean = score(x)
    changes = np.array([score(picture_in.float()) - clean for picture_in in imputed], np.float32)
    assert np.abs(changes).max() > 1e-3  # imputing moves the target's score: the oracle tells maps apart
    np.testing.assert_allclose(scores.curves["road_lerf"][1][0], changes[:2], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scores.curves["road_morf"][1][0], changes[2:], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("metrics", "words"),
    [
        (["max_sensitivity"], "class-index targets"),
        (["random_logit"], "explain classes"),
        (["pointing"], "needs ground truth"),
    ],
)
def test_metrics_that_cannot_apply_to_a_detector_say_so(
    det: torch.nn.Module, found: tuple[list[int], np.ndarray], metrics: list[str], words: str
) -> None:
    image = picture(DET_SIDE)
    explanation = camscope.explain(det, image, "eigencam", BoxScoreTarget(*found))
    with pytest.raises(CamscopeError, match=words) as caught:
        camscope.evaluate(det, image, explanation, metrics)
    assert "\n" not in str(caught.value)


def test_average_drop_of_a_negative_score_is_flagged(seg: torch.nn.Module) -> None:
    """A segmentation target is a sum of raw logits: where it is negative a drop (a fraction of it) is undefined."""
    image = picture(SEG_SIDE)
    x = model_and_batch(seg, image).x[0]
    region = np.ones((SEG_SIDE, SEG_SIDE), np.float32)
    clean = [segmentation_score(seg, c, region)(x) for c in range(3)]
    assert min(clean) < 0, "the test needs a class whose logits sum to a negative score"
    category = int(np.argmin(clean))
    heat = np.random.default_rng(0).random((1, SEG_SIDE, SEG_SIDE)).astype(np.float32)
    with pytest.warns(CamscopeWarning, match=r"clean score is negative.*\(image\(s\) 0\)"):
        scores = camscope.evaluate(seg, image, heat, ["avgdrop"], SegmentationTarget(category, region))
    assert scores["avg_drop"][0] == 0.0


def test_score_name_says_what_the_curves_measure_for_each_kind_of_output() -> None:
    from camscope.core.outputs import Detections
    from camscope.core.targets import SimilarityTarget, score_name

    assert score_name(torch.zeros(2, 10)) == "target probability"
    assert score_name(torch.zeros(2, 10, 8, 8)) == "class score summed over the region"
    detections = Detections([{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0), "scores": torch.zeros(0)}])
    assert score_name(detections) == "matched detection's IoU + score"
    similarity = SimilarityTarget(torch.ones(4))
    assert score_name(torch.zeros(1, 4), [similarity]) == score_name(torch.zeros(1, 4), similarity) == "similarity"
