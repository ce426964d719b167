"""Weights resolution order, safe reading, strict loading, random weights — on a tiny model."""

from __future__ import annotations

import argparse
import hashlib
import re
import warnings

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from camscope.core.errors import UnknownNameError, WeightsError
from camscope.models import (
    ENV_VAR,
    ModelSpec,
    Preprocess,
    RandomWeightsWarning,
    Take,
    WeightsFile,
    get_spec,
    load_model,
    register_model,
    unregister_model,
)
from camscope.models import weights as weights_module


def tiny_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )


FILE = "tiny-weights.pth"
URL = "https://example.invalid/tiny-weights.pth"


def _spec(name: str = "test_tiny", *files: WeightsFile) -> ModelSpec:
    return ModelSpec(
        name=name,
        family="Tiny",
        build=tiny_net,
        preprocess=Preprocess.imagenet(40, 32, "bilinear"),
        weights=files or (WeightsFile(FILE, URL, convert=(Take("model"),)),),
        num_classes=3,
    )


@pytest.fixture
def place(tmp_path, monkeypatch):
    """Isolated search path: empty cwd, no $CAMSCOPE_WEIGHTS, private torch.hub and package dirs."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(weights_module, "PACKAGED_DIR", tmp_path / "package")
    return tmp_path


@pytest.fixture
def tiny(place):
    spec = register_model(_spec())
    yield spec
    unregister_model(spec.name)


def _source(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = tiny_net().eval()
    model[1].running_mean.normal_()
    return model


def _write(folder, model: nn.Module, name: str = FILE) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "epoch": 3}, folder / name)


def _same(model: nn.Module, source: nn.Module) -> bool:
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        return torch.allclose(model(x), source(x))


def test_missing_weights_name_the_file_the_url_and_where_to_put_it(tiny, place):
    with pytest.raises(WeightsError) as info:
        load_model("test_tiny")
    message = str(info.value)
    for part in (FILE, URL, str(place / "cwd" / "pretrained_weights"), "random_weights=True"):
        assert part in message


def test_pretrained_weights_folder_in_the_working_directory(tiny, place):
    source = _source(0)
    _write(place / "cwd" / "pretrained_weights", source)
    model = load_model("test_tiny")
    assert _same(model, source) and not model.training
    assert model.camscope_weights == {FILE: str(place / "cwd" / "pretrained_weights" / FILE)}


def test_environment_folder_comes_before_the_working_directory(tiny, place, monkeypatch):
    _write(place / "cwd" / "pretrained_weights", _source(0))
    env_source = _source(1)
    _write(place / "env", env_source)
    monkeypatch.setenv(ENV_VAR, str(place / "env"))
    assert _same(load_model("test_tiny"), env_source)


def test_explicit_folder_or_file_wins_and_is_the_only_place_looked_at(tiny, place, monkeypatch):
    env_source, explicit_source = _source(1), _source(2)
    _write(place / "env", env_source)
    monkeypatch.setenv(ENV_VAR, str(place / "env"))
    _write(place / "mine", explicit_source, name="renamed.pth")
    assert _same(load_model("test_tiny", weights=place / "mine" / "renamed.pth"), explicit_source)
    with pytest.raises(WeightsError, match=f"not found in {re.escape(str(place / 'mine'))}"):
        load_model("test_tiny", weights=place / "mine")
    with pytest.raises(WeightsError, match="does not exist"):
        load_model("test_tiny", weights=place / "nowhere")


def test_torch_hub_cache_is_searched_last(tiny, place):
    source = _source(3)
    _write(place / "torch" / "hub" / "checkpoints", source)
    model = load_model("test_tiny")
    assert _same(model, source)


def test_packaged_files_are_found_without_configuration(place):
    spec = register_model(_spec("test_packaged", WeightsFile(FILE, None, convert=(Take("model"),), packaged=True)))
    try:
        source = _source(4)
        _write(place / "package", source)
        assert _same(load_model("test_packaged"), source)
    finally:
        unregister_model(spec.name)


def test_download_is_opt_in_and_checks_the_hash_in_the_file_name(place):
    source = _source(5)
    _write(place / "server", source, name="upload.pth")
    data = (place / "server" / "upload.pth").read_bytes()
    good = f"tiny-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    url = (place / "server" / "upload.pth").as_uri()
    register_model(_spec("test_download", WeightsFile(good, url, convert=(Take("model"),))))
    register_model(_spec("test_bad_hash", WeightsFile("tiny-00000000.pth", url, convert=(Take("model"),))))
    try:
        with pytest.raises(WeightsError, match="weights not found"):
            load_model("test_download")
        assert _same(load_model("test_download", download=True), source)
        assert (place / "torch" / "hub" / "checkpoints" / good).is_file()
        with pytest.raises(WeightsError, match="could not download"):
            load_model("test_bad_hash", download=True)
    finally:
        unregister_model("test_download")
        unregister_model("test_bad_hash")


def test_random_weights_only_on_request_and_marked(tiny):
    with pytest.warns(RandomWeightsWarning, match="RANDOM weights"):
        model = load_model("test_tiny", random_weights=True)
    assert model.camscope_random_weights is True and not model.training
    with pytest.raises(WeightsError, match="not both"):
        load_model("test_tiny", weights=".", random_weights=True)


def test_loaded_models_are_not_marked_random(tiny, place):
    _write(place / "cwd" / "pretrained_weights", _source(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)
        assert load_model("test_tiny").camscope_random_weights is False


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.update(extra=torch.zeros(1)), r"1 unexpected \(extra\)"),
        (lambda s: s.update({"5.weight": torch.zeros(3, 5)}), r"1 wrong shape \(5\.weight \(file 3×5, model 3×4\)\)"),
        (lambda s: s.pop("0.bias"), r"1 missing \(0\.bias\)"),
    ],
)
def test_checkpoints_that_do_not_fit_are_refused_with_the_differences(tiny, place, edit, message):
    state = _source(0).state_dict()
    edit(state)
    (place / "cwd" / "pretrained_weights").mkdir()
    torch.save({"model": state}, place / "cwd" / "pretrained_weights" / FILE)
    with pytest.raises(WeightsError, match=message):
        load_model("test_tiny")


def test_old_files_without_batchnorm_counters_load(tiny, place):
    source = _source(0)
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    (place / "cwd" / "pretrained_weights").mkdir()
    torch.save({"model": state}, place / "cwd" / "pretrained_weights" / FILE)
    assert _same(load_model("test_tiny"), source)


class Payload:
    """A class a checkpoint should never be allowed to instantiate."""


def test_files_with_arbitrary_objects_are_not_unpickled(tiny, place):
    (place / "cwd" / "pretrained_weights").mkdir()
    torch.save({"model": _source(0).state_dict(), "hook": Payload()}, place / "cwd" / "pretrained_weights" / FILE)
    with pytest.raises(WeightsError, match=r"refusing to unpickle .*Payload"):
        load_model("test_tiny")


def test_harmless_extras_such_as_run_arguments_are_allowed(tiny, place):
    source = _source(0)
    (place / "cwd" / "pretrained_weights").mkdir()
    extras = {"model": source.state_dict(), "args": argparse.Namespace(lr=0.1), "acc": torch.tensor(1.0)}
    torch.save(extras, place / "cwd" / "pretrained_weights" / FILE)
    assert _same(load_model("test_tiny"), source)


def test_safetensors_files(place):
    source = _source(6)
    register_model(_spec("test_safetensors", WeightsFile("tiny.safetensors")))
    try:
        save_file(source.state_dict(), str(place / "tiny.safetensors"))
        assert _same(load_model("test_safetensors", weights=place / "tiny.safetensors"), source)
        (place / "broken.safetensors").write_bytes(b"not a safetensors file")
        with pytest.raises(WeightsError, match="not a readable safetensors file"):
            load_model("test_safetensors", weights=place / "broken.safetensors")
    finally:
        unregister_model("test_safetensors")


def test_two_files_must_not_give_the_same_tensor(place):
    files = (WeightsFile("a.pth", convert=(Take("model"),)), WeightsFile("b.pth", convert=(Take("model"),)))
    register_model(_spec("test_two_files", *files))
    try:
        _write(place / "w", _source(0), "a.pth")
        _write(place / "w", _source(0), "b.pth")
        with pytest.raises(WeightsError, match="repeats keys"):
            load_model("test_two_files", weights=place / "w")
    finally:
        unregister_model("test_two_files")


def test_models_outside_the_zoo_resolve_their_published_file(place):
    with pytest.raises(WeightsError, match=re.escape("convnext_atto_d2-01bb0f51.pth from https://github.com/")):
        load_model("convnext_atto")
    import timm

    source = timm.create_model("convnext_atto", pretrained=False).eval()
    torch.save(source.state_dict(), place / "any-name.pth")
    model = load_model("convnext_atto", weights=place / "any-name.pth")
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), source(x))


def test_unknown_names_suggest_zoo_names():
    with pytest.raises(UnknownNameError, match=r"did you mean .*dino_resnet50"):
        get_spec("dino_resnet")


def test_registering_twice_needs_overwrite(tiny):
    with pytest.raises(ValueError, match="already registered"):
        register_model(_spec())
    assert register_model(_spec(), overwrite=True).name == "test_tiny"


def test_timm_models_are_found_in_the_hugging_face_cache(place, monkeypatch):
    import huggingface_hub.constants
    import timm

    cache = place / "hf"
    snapshot = cache / "models--timm--convnext_atto.d2_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (cache / "models--timm--convnext_atto.d2_in1k" / "refs").mkdir()
    (cache / "models--timm--convnext_atto.d2_in1k" / "refs" / "main").write_text("abc123")
    source = timm.create_model("convnext_atto", pretrained=False).eval()
    save_file(source.state_dict(), str(snapshot / "model.safetensors"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    model = load_model("convnext_atto")
    assert model.camscope_weights == {"convnext_atto_d2-01bb0f51.pth": str(snapshot / "model.safetensors")}
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), source(x))
