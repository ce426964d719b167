"""Migration: the peer's Hugging Face tutorial (ResNet, ConvNeXt, Swin, ViT and SegFormer: Grad-CAM through its
``HuggingfaceToTensorModelWrapper`` and ``run_grad_cam_on_image``, and Deep Feature Factorization through
``run_dff_on_image``).

The tutorial's code; only the lines that download are replaced: the photo by a generated 64 x 96 image, each
``from_pretrained`` checkpoint by a random model (seed 0) from a tiny config of the same kind, with the label
names the tutorial asks for. Two layer paths are those of transformers 5, which renamed them (each says so).
The ViT keeps the checkpoint's geometry (384 x 384 in 32-pixel patches: the 12 x 12 grid the tutorial's
reshape transform hard-codes); Swin and SegFormer end at stride 32, as the tutorial's
``img_tensor.shape[2] // 32`` assumes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers as hf
from torch import nn

from tests.compat.helpers import assert_same, migrate, scene

# the tutorial's two targets among a few other names
LABELS = ["tabby, tabby cat", "Egyptian cat", "remote control, remote", "couch", "tiger cat"]


def tiny(config: hf.PretrainedConfig, model_class: type[nn.Module]) -> nn.Module:
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {name: i for i, name in enumerate(LABELS)}
    torch.manual_seed(0)
    return model_class(config).eval()


STAGES4 = dict(depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1])
MODELS = {
    "resnet": lambda: tiny(
        hf.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"),
        hf.ResNetForImageClassification,
    ),
    "convnext": lambda: tiny(
        hf.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2), hf.ConvNextForImageClassification
    ),
    "swin": lambda: tiny(
        hf.SwinConfig(image_size=64, patch_size=4, embed_dim=8, window_size=2, **STAGES4),
        hf.SwinForImageClassification,
    ),
    "vit": lambda: tiny(
        hf.ViTConfig(
            image_size=384,
            patch_size=32,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        ),
        hf.ViTForImageClassification,
    ),
    "segformer": lambda: tiny(
        hf.SegformerConfig(
            depths=[1, 1, 1, 1],
            hidden_sizes=[8, 16, 16, 16],
            num_attention_heads=[1, 1, 1, 1],
            decoder_hidden_size=16,
        ),
        hf.SegformerForImageClassification,
    ),
}

COMMON = """
from torchvision import transforms
from pytorch_grad_cam import run_dff_on_image, GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.image import show_cam_on_image
from PIL import Image
import numpy as np
import cv2
import torch
from typing import List, Callable, Optional
from functools import partial

image = Image.fromarray(generated_image)  # the tutorial downloads a COCO photo here
img_tensor = transforms.ToTensor()(image)

\"\"\" Model wrapper to return a tensor\"\"\"
class HuggingfaceToTensorModelWrapper(torch.nn.Module):
    def __init__(self, model):
        super(HuggingfaceToTensorModelWrapper, self).__init__()
        self.model = model

    def forward(self, x):
        return self.model(x).logits

def category_name_to_index(model, category_name):
    name_to_index = dict((v, k) for k, v in model.config.id2label.items())
    return name_to_index[category_name]

def run_grad_cam_on_image(model: torch.nn.Module,
                          target_layer: torch.nn.Module,
                          targets_for_gradcam: List[Callable],
                          reshape_transform: Optional[Callable],
                          input_tensor: torch.nn.Module=img_tensor,
                          input_image: Image=image,
                          method: Callable=GradCAM):
    with method(model=HuggingfaceToTensorModelWrapper(model),
                 target_layers=[target_layer],
                 reshape_transform=reshape_transform) as cam:

        # Replicate the tensor for each of the categories we want to create Grad-CAM for:
        repeated_tensor = input_tensor[None, :].repeat(len(targets_for_gradcam), 1, 1, 1)

        batch_results = cam(input_tensor=repeated_tensor,
                            targets=targets_for_gradcam)
        results = []
        for grayscale_cam in batch_results:
            visualization = show_cam_on_image(np.float32(input_image)/255,
                                              grayscale_cam,
                                              use_rgb=True)
            # Make it weight less in the notebook:
            visualization = cv2.resize(visualization,
                                       (visualization.shape[1]//2, visualization.shape[0]//2))
            results.append(visualization)
        return np.hstack(results)


def print_top_categories(model, img_tensor, top_k=5):
    logits = model(img_tensor.unsqueeze(0)).logits
    indices = logits.cpu()[0, :].detach().numpy().argsort()[-top_k:][::-1]
    for i in indices:
        print(f"Predicted class {i}: {model.config.id2label[i]}")

model = make_model()  # the tutorial: <Model>ForImageClassification.from_pretrained(<checkpoint>)
targets_for_gradcam = [ClassifierOutputTarget(category_name_to_index(model, "Egyptian cat")),
                       ClassifierOutputTarget(category_name_to_index(model, "remote control, remote"))]
"""

# each model's cell; the displayed pictures are given names (dff, gradcam)
CELLS = {
    "resnet": """
target_layer = model.resnet.encoder.stages[-1].layers[-1]
gradcam = run_grad_cam_on_image(model=model,
                      target_layer=target_layer,
                      targets_for_gradcam=targets_for_gradcam,
                      reshape_transform=None)
dff = run_dff_on_image(model=model,
                          target_layer=target_layer,
                          classifier=model.classifier,
                          img_pil=image,
                          img_tensor=img_tensor,
                          reshape_transform=None,
                          n_components=4,
                          top_k=2)
print_top_categories(model, img_tensor)
""",
    "convnext": """
target_layer = model.convnext.encoder.stages[-1].layers[-1]
dff = run_dff_on_image(model=model,
                          target_layer=target_layer,
                          classifier=model.classifier,
                          img_pil=image,
                          img_tensor=img_tensor,
                          reshape_transform=None,
                          n_components=4,
                          top_k=2)
gradcam = run_grad_cam_on_image(model=model,
                      target_layer=target_layer,
                      targets_for_gradcam=targets_for_gradcam,
                      reshape_transform=None)
""",
    "swin": """
def swinT_reshape_transform_huggingface(tensor, width, height):
    result = tensor.reshape(tensor.size(0),
                            height,
                            width,
                            tensor.size(2))
    result = result.transpose(2, 3).transpose(1, 2)
    return result

target_layer = model.swin.layernorm
reshape_transform = partial(swinT_reshape_transform_huggingface,
                            width=img_tensor.shape[2]//32,
                            height=img_tensor.shape[1]//32)
dff = run_dff_on_image(model=model,
                          target_layer=target_layer,
                          classifier=model.classifier,
                          img_pil=image,
                          img_tensor=img_tensor,
                          reshape_transform=reshape_transform,
                          n_components=4,
                          top_k=2)
gradcam = run_grad_cam_on_image(model=model,
                      target_layer=target_layer,
                      targets_for_gradcam=targets_for_gradcam,
                      reshape_transform=reshape_transform)
""",
    "vit": """
def reshape_transform_vit_huggingface(x):
    activations = x[:, 1:, :]
    activations = activations.view(activations.shape[0],
                                   12, 12, activations.shape[2])
    activations = activations.transpose(2, 3).transpose(1, 2)
    return activations

target_layer_dff = model.vit.layernorm
target_layer_gradcam = model.vit.layers[-2]  # the tutorial (transformers 4): model.vit.encoder.layer[-2].output
image_resized = image.resize((384, 384))
tensor_resized = transforms.ToTensor()(image_resized)
dff = run_dff_on_image(model=model,
                          target_layer=target_layer_dff,
                          classifier=model.classifier,
                          img_pil=image_resized,
                          img_tensor=tensor_resized,
                          reshape_transform=reshape_transform_vit_huggingface,
                          n_components=4,
                          top_k=2)
gradcam = run_grad_cam_on_image(model=model,
                      target_layer=target_layer_gradcam,
                      targets_for_gradcam=targets_for_gradcam,
                      input_tensor=tensor_resized,
                      input_image=image_resized,
                      reshape_transform=reshape_transform_vit_huggingface)
""",
    "segformer": """
def segformer_reshape_transform_huggingface(tensor, width, height):
    result = tensor.reshape(tensor.size(0),
                            height,
                            width,
                            tensor.size(2))
    result = result.transpose(2, 3).transpose(1, 2)
    return result

target_layer = model.segformer.stages[-1].layer_norm  # the tutorial (transformers 4): encoder.layer_norm[-1]
reshape_transform = partial(segformer_reshape_transform_huggingface,
                            width=img_tensor.shape[2]//32,
                            height=img_tensor.shape[1]//32)
dff = run_dff_on_image(model=model,
                          target_layer=target_layer,
                          classifier=model.classifier,
                          img_pil=image,
                          img_tensor=img_tensor,
                          reshape_transform=reshape_transform,
                          n_components=4,
                          top_k=2)
gradcam = run_grad_cam_on_image(model=model,
                      target_layer=target_layer,
                      targets_for_gradcam=targets_for_gradcam,
                      reshape_transform=reshape_transform)
""",
}


@pytest.mark.parametrize("name", list(CELLS))
def test_huggingface_tutorial(name, peer_colormap_lookup):
    picture = np.uint8(scene(96)[:64] * 255)
    peer, ours = migrate(COMMON + CELLS[name], make_model=MODELS[name], generated_image=picture)
    assert ours["gradcam"].dtype == np.uint8 and ours["gradcam"].std() > 1
    assert_same(peer, ours, ["gradcam", "dff"])
