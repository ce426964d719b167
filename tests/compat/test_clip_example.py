"""Migration: the peer's ``usage_examples/clip_example.py``, one ``--method`` per run.

The example's code without its argument parser (``args.*`` are given); only the lines that download change:
``CLIPModel.from_pretrained("openai/clip-vit-large-patch14")`` is a random tiny CLIP (seed 0) of the same
vision geometry (224 x 224 in 14-pixel patches: the 16 x 16 grid its reshape transform hard-codes), and
``CLIPProcessor.from_pretrained`` a fixed character tokenizer; the image file is a generated picture.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers as hf

from tests.compat.helpers import assert_same, migrate, scene

TEXT = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=1)
VISION = dict(image_size=224, patch_size=14, hidden_size=16, intermediate_size=32, num_hidden_layers=1)


def tiny_clip() -> hf.CLIPModel:
    tokens = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0, max_position_embeddings=16)
    config = hf.CLIPConfig(
        text_config=dict(**TEXT, **tokens, projection_dim=8),
        vision_config=dict(**VISION, num_attention_heads=1, projection_dim=8),
        projection_dim=8,
    )
    torch.manual_seed(0)
    return hf.CLIPModel(config).eval()


class CharacterProcessor:
    """CLIPProcessor's text call offline: one id per character, between begin and end tokens, padded."""

    def __call__(self, text: list[str], return_tensors: str, padding: bool) -> dict[str, torch.Tensor]:
        rows = [[1, *(3 + ord(c) % 60 for c in label), 2] for label in text]
        width = max(len(row) for row in rows)
        ids = torch.tensor([row + [0] * (width - len(row)) for row in rows])
        return {"input_ids": ids, "attention_mask": (ids > 0).long()}


EXAMPLE = """
import cv2
import numpy as np
import torch
from torch import nn
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from pytorch_grad_cam import GradCAM, \\
    ScoreCAM, \\
    GradCAMPlusPlus, \\
    AblationCAM, \\
    XGradCAM, \\
    EigenCAM, \\
    EigenGradCAM, \\
    LayerCAM, \\
    FullGrad

from pytorch_grad_cam.utils.image import show_cam_on_image, \\
    preprocess_image
from pytorch_grad_cam.ablation_layer import AblationLayerVit


def reshape_transform(tensor, height=16, width=16):
    result = tensor[:, 1:, :].reshape(tensor.size(0),
                                      height, width, tensor.size(2))

    # Bring the channels to the first dimension,
    # like in CNNs.
    result = result.transpose(2, 3).transpose(1, 2)
    return result


class ImageClassifier(nn.Module):
    def __init__(self, labels):
        super(ImageClassifier, self).__init__()
        self.clip = make_clip()  # the example: CLIPModel.from_pretrained("openai/clip-vit-large-patch14")
        self.processor = make_processor()  # the example: CLIPProcessor.from_pretrained(the same)
        self.labels = labels

    def forward(self, x):
        text_inputs = self.processor(text=self.labels, return_tensors="pt", padding=True)

        outputs = self.clip(pixel_values=x, input_ids=text_inputs['input_ids'].to(self.clip.device),
                            attention_mask=text_inputs['attention_mask'].to(self.clip.device))

        logits_per_image = outputs.logits_per_image
        probs = logits_per_image.softmax(dim=1)

        for label, prob in zip(self.labels, probs[0]):
            print(f"{label}: {prob:.4f}")
        return probs


methods = \\
    {"gradcam": GradCAM,
     "scorecam": ScoreCAM,
     "gradcam++": GradCAMPlusPlus,
     "ablationcam": AblationCAM,
     "xgradcam": XGradCAM,
     "eigencam": EigenCAM,
     "eigengradcam": EigenGradCAM,
     "layercam": LayerCAM,
     "fullgrad": FullGrad}

labels = args_labels
model = ImageClassifier(labels).to(torch.device(args_device)).eval()

target_layers = [model.clip.vision_model.encoder.layers[-1].layer_norm1]

rgb_img = np.uint8(generated_image * 255)  # the example: cv2.imread(args.image_path, 1)[:, :, ::-1]
rgb_img = cv2.resize(rgb_img, (224, 224))
rgb_img = np.float32(rgb_img) / 255
input_tensor = preprocess_image(rgb_img, mean=[0.5, 0.5, 0.5],
                                std=[0.5, 0.5, 0.5]).to(args_device)

if args_method == "ablationcam":
    cam = methods[args_method](model=model,
                               target_layers=target_layers,
                               reshape_transform=reshape_transform,
                               ablation_layer=AblationLayerVit())
else:
    cam = methods[args_method](model=model,
                               target_layers=target_layers,
                               reshape_transform=reshape_transform)

targets = None
cam.batch_size = 32

grayscale_cam = cam(input_tensor=input_tensor,
                    targets=targets,
                    eigen_smooth=args_eigen_smooth,
                    aug_smooth=args_aug_smooth)

grayscale_cam = grayscale_cam[0, :]

cam_image = show_cam_on_image(rgb_img, grayscale_cam)
"""


def _run(method: str, eigen_smooth: bool = False) -> tuple[dict[str, object], dict[str, object]]:
    given = dict(make_clip=tiny_clip, make_processor=CharacterProcessor, generated_image=scene(96))
    given |= dict(args_labels=["a cat", "a dog", "a car", "a person", "a shoe"], args_device="cpu")
    return migrate(EXAMPLE, args_method=method, args_eigen_smooth=eigen_smooth, args_aug_smooth=False, **given)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "xgradcam", "layercam"])
def test_clip_example(method):
    peer, ours = _run(method)
    assert np.asarray(ours["grayscale_cam"]).std() > 0.01
    assert_same(peer, ours, ["grayscale_cam", "cam_image"], colored={"cam_image": "grayscale_cam"})


@pytest.mark.parametrize(("method", "eigen_smooth"), [("eigencam", False), ("gradcam", True)])
def test_clip_example_principal_component(method, eigen_smooth, sign_corrected_peer):
    """Deliberate difference: camscope orients the principal component (see the fixture)."""
    peer, ours = _run(method, eigen_smooth)
    assert_same(peer, ours, ["grayscale_cam", "cam_image"], colored={"cam_image": "grayscale_cam"})
