"""The shipped mini zoo: every model loads from the package, reproduces its record and uses the object."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from camscope.core.errors import InputError
from camscope.data.synthetic import CLASS_NAMES, generate, to_input
from camscope.models import get_spec, load_model, locate_weights
from camscope.models.layers import probe
from camscope.models.mini import MINI_MODELS, PREPROCESS, TEST_SEED, mini_record
from camscope.models.weights import PACKAGED_DIR as WEIGHTS_DIR
from camscope_lab.config import CONFIGS, EVALUATION_ONLY, config_differences, config_from
from camscope_lab.data import predict
from camscope_lab.records import CHECK_N, METHOD_SUFFIX, images_seen

CHANCE = 100 / len(CLASS_NAMES)


@pytest.fixture(scope="module")
def test_set():
    return generate(CHECK_N, TEST_SEED, counterfactual=True)


def test_nine_models_mirror_the_seed_zoo():
    assert MINI_MODELS == (
        "mini_resnet",
        "mini_deit",
        "mini_cait",
        "mini_swin",
        "mini_xcit",
        "mini_dino_resnet",
        "mini_dino_xcit",
        "mini_mocov3_resnet",
        "mini_mocov3_vit",
    )
    methods = {name: get_spec(name).ssl_method for name in MINI_MODELS}
    assert tuple(n for n, m in methods.items() if m is None) == MINI_MODELS[:5]
    assert methods["mini_dino_resnet"] == methods["mini_dino_xcit"] == "DINO"
    assert methods["mini_mocov3_resnet"] == methods["mini_mocov3_vit"] == "MoCo v3"


def test_weights_are_packaged_and_small():
    files = sorted(WEIGHTS_DIR.glob("*.safetensors"))
    models = [f for f in files if not f.name.endswith(METHOD_SUFFIX)]
    assert [f.stem for f in models] == sorted(MINI_MODELS)
    # a method-state file (heads for a warm restart) sits beside a self-supervised model whose record names it
    named = {n: mini_record(n).get("method_state") for n in MINI_MODELS}
    assert {f.name for f in files if f not in models} == {v for v in named.values() if v}
    assert all(mini_record(n)["training"] != "supervised" for n, v in named.items() if v)
    assert sum(f.stat().st_size for f in files) <= 15 * 2**20
    for name in MINI_MODELS:
        (location,) = locate_weights(get_spec(name))
        assert location.found and location.file.packaged, name


@pytest.mark.parametrize("name", MINI_MODELS)
def test_spec_describes_the_model(name):
    spec = get_spec(name)
    rec = mini_record(name)
    assert spec.class_names == CLASS_NAMES and spec.num_classes == len(CLASS_NAMES)
    assert spec.preprocess == PREPROCESS and spec.input_size == (3, 64, 64)
    assert spec.training == rec["training"] and spec.ssl_method == rec["ssl_method"]
    # the declared group (camscope.models.mini.MINI) is the one the shipped weights were trained in
    assert CONFIGS[name].paired_views == rec.get("config", {}).get("paired_views") == rec.get("paired_views")
    assert spec.family == rec["family"] == CONFIGS[name].family


@pytest.mark.parametrize("name", MINI_MODELS)
def test_record_command_replays_the_shipped_recipe(name):
    """The record's ``command`` is a plain ``camscope train-mini``: it replays the run only while the
    recipe in the code equals the config the run trained with. A recipe experiment shipped without
    adopting its ``--set`` changes (camscope_lab/experiments/mini_ssl_recipes.py) fails here. Not compared: the
    budget (the command fixes ``--steps``) and, for a supervised model, the probe settings it never uses."""
    rec = mini_record(name)
    ignored = {"minutes"} | (set() if CONFIGS[name].ssl else EVALUATION_ONLY)
    differ = config_differences(config_from(rec["config"]), CONFIGS[name], ignored)
    assert not differ, f"{name}: trained with (record, recipe) {differ}; adopt them in its recipe (models.mini.MINI)"
    assert rec["command"].startswith(f"camscope train-mini --model {name} ")


@pytest.mark.parametrize("name", MINI_MODELS)
def test_record_says_how_many_images_its_model_has_seen(name):
    """``train-mini --continue-from`` starts a warm restart on the images after these; without the count
    a restart from the shipped file is refused (the only copy of a run that survives a fresh machine)."""
    rec = mini_record(name)
    batch_size = rec.get("batch_size", rec.get("config", {}).get("batch_size"))
    assert images_seen(rec) >= rec["steps"] * batch_size
    assert (images_seen(rec) > rec["steps"] * batch_size) == bool(rec.get("prior_steps"))
    with pytest.raises(InputError, match="does not say how many images"):
        images_seen({**{k: v for k, v in rec.items() if k != "images"}, "prior_steps": 1})


@pytest.mark.parametrize("name", MINI_MODELS)
def test_default_cam_grid_is_at_least_7x7(name):
    model = load_model(name)
    layers, reshape = get_spec(name).cam_layers(model)
    layer_name = next(n for n, m in model.named_modules() if m is layers[0])
    seen = probe(model, (64, 64), {layer_name: layers[0]})
    out = torch.zeros(seen[layer_name].shape)
    grid = (reshape(out) if reshape else out).shape[2:]
    assert min(grid) >= 7, (name, grid)


def test_preprocess_matches_training_normalisation(test_set):
    image = test_set.images[0]
    assert torch.allclose(PREPROCESS(image), to_input(image[None])[0], atol=1e-6)


_ACCURACIES: dict[str, tuple[float, float]] = {}


def accuracies(name: str, test_set) -> tuple[float, float]:
    """(accuracy, accuracy with the object erased) in % on the check images, computed once per model."""
    if name not in _ACCURACIES:
        model = load_model(name)
        accuracy = float((predict(model, to_input(test_set.images)).numpy() == test_set.labels).mean() * 100)
        removed = float((predict(model, to_input(test_set.counterfactual)).numpy() == test_set.labels).mean() * 100)
        _ACCURACIES[name] = (accuracy, removed)
    return _ACCURACIES[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", MINI_MODELS)
def test_shipped_model_reproduces_its_record(name, test_set):
    """Accuracy within 2 points of the record; with the object erased, at most about chance.

    The record's check figure is measured at training time on the same fresh test images (the first
    CHECK_N of ``generate(1000, TEST_SEED)``, never used for training) from the saved fp16 file.
    """
    rec = mini_record(name)
    assert (rec["test_seed"], rec["check_images"]) == (TEST_SEED, CHECK_N)
    accuracy, removed = accuracies(name, test_set)
    print(f"{name}: {accuracy:.1f}% (record {rec['check_accuracy']}%), object removed {removed:.1f}%")
    assert abs(accuracy - rec["check_accuracy"]) <= 2.0
    assert abs(accuracy - rec["test_accuracy"]) <= 5.0  # the 1000-image figure of the README
    assert removed <= CHANCE + 10, f"{name} is {removed:.1f}% right without the object (chance {CHANCE:.0f}%)"


def _uses_the_object_cases() -> list:
    cases = []
    for name in MINI_MODELS:
        check = mini_record(name)["check_accuracy"]
        weak = pytest.mark.xfail(
            reason=f"{name} is at {check}% on its record, under twice chance ({2 * CHANCE:.0f}%): "
            "it has not learned the task well enough for erasing the object to show",
            strict=False,
        )
        cases.append(pytest.param(name, marks=weak) if check < 2 * CHANCE else name)
    return cases


@pytest.mark.slow
@pytest.mark.parametrize("name", _uses_the_object_cases())
def test_shipped_model_uses_the_object(name, test_set):
    """A model that learned the task loses most of its margin over chance when the object is erased."""
    accuracy, removed = accuracies(name, test_set)
    assert accuracy - removed >= 0.8 * (accuracy - CHANCE), (name, accuracy, removed)


def test_counterfactuals_differ_only_on_the_object(test_set):
    same = test_set.images == test_set.counterfactual
    assert np.all(same.all(axis=-1) | test_set.masks)
