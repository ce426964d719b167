"""Training code pieces, checked without training: schedules, views, SSL losses, probe folding, CLI."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
from torchvision.models.resnet import ResNet

from camscope.models import mini_archs as backbones
from camscope_lab.augment import CropSpec, gaussian_blur, solarize, views
from camscope_lab.config import CONFIGS
from camscope_lab.dino import Dino
from camscope_lab.loop import cosine_lr
from camscope_lab.moco import MocoV3
from camscope_lab.ssl_common import cosine_momentum, ema_update, momentum_copy


def test_mini_resnet_is_a_torchvision_resnet_with_stride_8():
    model = backbones.build("resnet")
    assert isinstance(model, ResNet)
    x = torch.zeros(1, 3, 64, 64)
    model.eval()
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    assert model.layer4(model.layer3(model.layer2(model.layer1(x)))).shape[2:] == (8, 8)


def test_schedules():
    assert cosine_lr(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert cosine_lr(10, 100, 1.0, 10) == pytest.approx(1.0)
    assert cosine_lr(100, 100, 1.0, 10) == pytest.approx(0.0)
    assert cosine_momentum(0.99, 0.0) == pytest.approx(0.99) and cosine_momentum(0.99, 1.0) == pytest.approx(1.0)


def test_ema_update_moves_towards_the_source():
    source = torch.nn.Linear(2, 2)
    target = momentum_copy(source)
    assert not any(p.requires_grad for p in target.parameters())
    with torch.no_grad():
        source.weight.add_(1.0)
    before = target.weight.clone()
    ema_update(target, source, 0.9)
    assert torch.allclose(target.weight, 0.9 * before + 0.1 * source.weight)


def test_views_are_random_crops_of_the_requested_sizes():
    images = torch.rand(4, 3, 64, 64)
    out = views(images, (CropSpec(2, 64, (0.4, 1.0)), CropSpec(1, 32, (0.1, 0.4))), torch.Generator().manual_seed(0))
    assert [v.shape for v in out] == [(4, 3, 64, 64)] * 2 + [(4, 3, 32, 32)]
    assert not torch.allclose(out[0], out[1])


def test_paired_views_cut_view_k_from_rendering_k_mod_2():
    """Twins (2, N, 3, H, W): each view is what the same random draws make of its own rendering."""
    first, second = torch.rand(2, 4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    crops = (CropSpec(2, 48, (0.25, 1.0)), CropSpec(3, 24, (0.1, 0.25)))
    paired = views(torch.stack([first, second]), crops, torch.Generator().manual_seed(0))
    from_first = views(first, crops, torch.Generator().manual_seed(0))
    from_second = views(second, crops, torch.Generator().manual_seed(0))
    for k, view in enumerate(paired):
        assert torch.equal(view, (from_first, from_second)[k % 2][k])
        assert not torch.equal(view, (from_second, from_first)[k % 2][k])


@pytest.mark.parametrize("method", [Dino, MocoV3])
def test_ssl_losses_take_paired_renderings(method):
    ssl = method(backbones.build("resnet"))
    assert torch.isfinite(ssl.loss(torch.rand(2, 8, 3, 64, 64), 0.0, torch.Generator().manual_seed(0)))


def test_paired_batches_hold_each_scene_and_its_twin():
    from camscope_lab.data import batches

    plain, paired = batches(0, 256, normalise=False), batches(0, 256, normalise=False, twins="shape")
    for _ in range(5):  # across a chunk boundary (4 batches per chunk)
        (x, y), (pair, y2) = next(plain), next(paired)
        assert pair.shape == (2, *x.shape) and torch.equal(pair[0], x) and torch.equal(y2, y)
        assert (pair[1] - x).abs().mean() > 0.1
    with pytest.raises(ValueError, match="twins"):
        next(batches(0, 256, twins="colour"))
    with pytest.raises(ValueError, match="background pool"):
        next(batches(0, 256, twins="object", background_pool=1))


def test_blur_smooths_chosen_images_only_and_keeps_their_mean():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(64, 3, 32, 32, generator=g)
    assert torch.equal(gaussian_blur(images, 0.0, g), images)
    blurred = gaussian_blur(images, 1.0, g)
    assert torch.allclose(blurred.mean((2, 3)), images.mean((2, 3)), atol=0.02)
    assert (blurred.std((2, 3)) <= images.std((2, 3)) + 1e-6).all()  # σ is drawn from 0.1 px (≈ identity) up
    assert blurred.std((2, 3)).mean() < 0.8 * images.std((2, 3)).mean()
    changed = (gaussian_blur(images, 0.5, g) != images).flatten(1).any(1).float().mean()
    assert 0.25 < changed < 0.75


def test_solarize_inverts_bright_pixels():
    x = torch.tensor([0.1, 0.5, 0.9]).view(1, 1, 1, 3)
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(solarize(x, 1.0, g), torch.tensor([0.1, 0.5, 0.1]).view(1, 1, 1, 3))
    assert torch.equal(solarize(x, 0.0, g), x)


@pytest.mark.parametrize(("method", "arch"), [(Dino, "resnet"), (Dino, "xcit"), (MocoV3, "resnet"), (MocoV3, "vit")])
def test_ssl_losses_reach_only_the_backbone_and_heads(method, arch):
    """One loss evaluation: finite, and gradients reach the trained parameters but never the classifier."""
    model = backbones.build(arch)
    ssl = method(model)
    ssl.train()
    loss = ssl.loss(torch.rand(8, 3, 64, 64), 0.0, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    loss.backward()
    head = set(map(id, backbones.head_of(model).parameters()))
    trained = ssl.trainable_parameters()
    assert not head & set(map(id, trained))
    assert any(p.grad is not None for p in trained)


def test_every_config_has_an_architecture():
    assert len(CONFIGS) == 9
    assert all(cfg.arch in backbones.ARCHS for cfg in CONFIGS.values())
    assert {cfg.ssl for cfg in CONFIGS.values()} == {None, "dino", "mocov3"}


def test_cli_registers_train_mini():
    from camscope.cli import train_mini

    parser = argparse.ArgumentParser()
    train_mini.register(parser.add_subparsers())
    args = parser.parse_args(["train-mini", "--model", "mini_resnet", "--minutes", "1"])
    assert args.func is train_mini.run and args.model == "mini_resnet" and args.minutes == 1.0


def test_convolutional_minis_train_channels_last_and_token_minis_do_not():
    """The layout is a speed choice for oneDNN's convolutions only; the token models keep theirs."""
    from camscope_lab.train import _fast_layout, ssl_method

    cfg = CONFIGS["mini_dino_resnet"]
    method = _fast_layout(cfg, ssl_method(cfg, backbones.build("resnet")))
    convs = [m.weight for m in method.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert len(convs) >= 2 * 9  # the student and the teacher, every 3x3 convolution
    assert all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in convs)
    vit = backbones.build("vit")
    before = {k: v.stride() for k, v in vit.state_dict().items()}
    _fast_layout(CONFIGS["mini_deit"], vit)
    assert {k: v.stride() for k, v in vit.state_dict().items()} == before


def test_dino_multi_crop_takes_the_configured_local_crops():
    """Local crops: half the global side, 10 % up to the global crops' smallest area; all go to the student."""
    import dataclasses

    from camscope_lab.train import ssl_method

    assert [
        (c.count, c.size, c.scale) for c in ssl_method(CONFIGS["mini_dino_resnet"], backbones.build("resnet")).crops
    ] == [
        (2, 32, (0.25, 1.0)),
        (2, 16, (0.1, 0.25)),
    ]
    cfg = dataclasses.replace(CONFIGS["mini_dino_xcit"], local_crops=6, pretrain_size=48)
    dino = ssl_method(cfg, backbones.build("xcit"))
    assert [(c.count, c.size, c.scale) for c in dino.crops] == [(2, 48, (0.25, 1.0)), (6, 24, (0.1, 0.25))]
    seen: list[int] = []
    dino.student_head.register_forward_hook(lambda _m, inputs, _out: seen.append(len(inputs[0])))
    loss = dino.loss(torch.rand(4, 3, 64, 64), 0.0, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    assert seen == [2 * 4, 6 * 4]  # the student sees every crop, same-size crops batched together as in DINO


def test_sinkhorn_knopp_matches_an_explicit_loop_oracle():
    """SwAV's alternating normalisation, written out element by element from the paper's algorithm."""
    from camscope_lab.dino import sinkhorn_knopp

    g = torch.Generator().manual_seed(0)
    logits, temp = torch.rand(6, 4, generator=g) * 2 - 1, 0.1
    b, k = logits.shape
    q = [[float(torch.exp(logits[i, j] / temp)) for i in range(b)] for j in range(k)]  # (K, B)
    total = sum(map(sum, q))
    q = [[v / total for v in row] for row in q]
    for _ in range(3):
        q = [[v / (sum(row) * k) for v in row] for row in q]
        cols = [sum(q[j][i] for j in range(k)) for i in range(b)]
        q = [[q[j][i] / (cols[i] * b) for i in range(b)] for j in range(k)]
    oracle = torch.tensor([[q[j][i] * b for j in range(k)] for i in range(b)])
    ours = sinkhorn_knopp(logits, temp)
    assert torch.allclose(ours, oracle, atol=1e-6)
    assert torch.allclose(ours.sum(1), torch.ones(b), atol=1e-6)  # each sample: a distribution
    # each prototype nearer its equal share of the batch than under a plain softmax (3 iterations: not exact)
    softmax = torch.softmax(logits / temp, dim=1)
    assert (ours.sum(0) - b / k).abs().max() < 0.5 * (softmax.sum(0) - b / k).abs().max()


def test_koleo_is_minus_the_mean_log_nearest_neighbour_distance():
    from camscope_lab.dino import koleo_loss

    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, generator=g)
    unit = [row / row.norm() for row in x]
    nearest = [min(float((unit[i] - unit[j]).norm()) for j in range(7) if j != i) for i in range(7)]
    assert koleo_loss(x).item() == pytest.approx(-sum(map(math.log, nearest)) / 7, rel=1e-5)
    spread = torch.eye(5)  # orthogonal rows lie farther apart than a bunched set: a lower loss
    assert koleo_loss(spread) < koleo_loss(spread + 3.0)
    twins = x.clone().requires_grad_()
    with torch.no_grad():
        twins[1] = twins[0]
    koleo_loss(twins).backward()  # two equal rows: a large loss, still a finite gradient
    assert torch.isfinite(twins.grad).all()


@pytest.mark.parametrize(("centering", "koleo"), [("sinkhorn", 0.0), ("ema", 0.1), ("sinkhorn", 0.1)])
def test_dino_options_keep_the_loss_finite_and_the_center_still_under_sinkhorn(centering, koleo):
    dino = Dino(backbones.build("resnet"), centering=centering, koleo=koleo)
    dino.train()
    loss = dino.loss(torch.rand(8, 3, 64, 64), 0.0, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    loss.backward()
    assert bool(dino.center.abs().sum() == 0) == (centering == "sinkhorn")  # only EMA centering moves it
    plain = Dino(backbones.build("resnet"), centering=centering)
    plain.load_state_dict(dino.state_dict())
    if koleo:  # the same weights and views: KoLeo adds a positive term (unit vectors lie under 2 apart)
        g = torch.Generator().manual_seed(1)
        images = torch.rand(8, 3, 64, 64)
        plain.center.zero_(), dino.center.zero_()
        assert dino.loss(images, 0.0, g) > plain.loss(images, 0.0, torch.Generator().manual_seed(1))


def test_mistyped_training_options_fail_in_one_line_before_training():
    import dataclasses

    from camscope.core.errors import CamscopeError

    for field, value in (("paired_views", "colour"), ("centering", "sinkorn")):
        with pytest.raises(CamscopeError, match=f"{field} must be one of .* not '{value}'"):
            dataclasses.replace(CONFIGS["mini_dino_xcit"], **{field: value})
    with pytest.raises(ValueError, match="centering"):
        Dino(backbones.build("resnet"), centering="sinkorn")


def test_effective_rank_counts_equally_used_directions():
    from camscope_lab.probe import effective_rank

    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(16, 16, generator=g))[0]
    signs = torch.randint(0, 2, (400, 3), generator=g).double() * 2 - 1  # ±1 along 3 orthogonal directions
    assert effective_rank(signs @ basis[:3].double()) == pytest.approx(3.0, rel=0.02)
    full = torch.randn(4000, 16, generator=g)
    assert 15.0 < effective_rank(full) <= 16.0
    squashed = full * torch.tensor([10.0] + [0.01] * 15)  # one direction carries nearly everything
    assert effective_rank(squashed) < 1.1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fresh-heads"], "--fresh-heads goes with --continue-from"),
        (["--resume", "--continue-from", "x.safetensors"], "choose one"),
    ],
)
def test_train_mini_rejects_options_that_do_not_go_together(capsys, args, message):
    """One line and exit status 2 before any model is built, not a traceback mid-run."""
    from camscope.cli import main

    assert main(["train-mini", "--model", "mini_dino_xcit", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_layer_scale_initialises_every_gain_of_a_fresh_cait_and_refuses_a_model_without_one():
    """CaiT's six blocks start their residual branches at the configured gain, not timm's 1e-5."""
    import dataclasses

    from camscope.core.errors import InputError
    from camscope_lab.train import trained_module

    cfg = dataclasses.replace(CONFIGS["mini_cait"], layer_scale=0.3)
    gains = {n: p for n, p in trained_module(cfg).named_parameters() if "gamma" in n}
    assert len(gains) == 2 * 6 and all(torch.all(p == 0.3) for p in gains.values())
    timms = dataclasses.replace(CONFIGS["mini_cait"], layer_scale=None)
    default = {n: p for n, p in trained_module(timms).named_parameters() if "gamma" in n}
    assert all(torch.allclose(p, torch.full_like(p, 1e-5)) for p in default.values())
    with pytest.raises(InputError, match="no layer-scale"):
        trained_module(dataclasses.replace(CONFIGS["mini_deit"], layer_scale=0.1))


@pytest.mark.parametrize("arch", ["vit", "swin"])
def test_drop_path_rises_linearly_to_the_rate_and_zero_turns_off_timms_default(arch):
    """Stochastic depth is 0 at the first block and ``rate`` at the last; 0 removes Swin's built-in 0.1."""
    from timm.layers import DropPath

    model = backbones.build(arch)
    backbones.set_drop_path(model, 0.2)
    rates = [m.drop_prob for m in model.modules() if isinstance(m, DropPath)]
    blocks = 6  # both minis have six residual blocks, each with two drop-path slots
    expected = [0.2 * i / (blocks - 1) for i in range(1, blocks) for _ in range(2)]
    assert rates == pytest.approx(expected)
    backbones.set_drop_path(model, 0.0)
    assert not any(isinstance(m, DropPath) for m in model.modules())
    x = torch.randn(2, 3, 64, 64)
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    assert torch.equal(a, model(x))  # no randomness left in the forward pass


@pytest.mark.parametrize("exempt", [False, True])
def test_no_decay_1d_spares_gains_biases_positions_and_class_token_only(exempt):
    """With ``no_decay_1d``, a step with zero gradients leaves every 1-D parameter and CaiT's position
    table and class token unchanged and still shrinks every matrix by lr × weight decay (AdamW's decoupled
    decay); without it, everything shrinks."""
    import dataclasses

    from camscope_lab.loop import Run
    from camscope_lab.train import trained_module

    torch.manual_seed(0)
    cfg = dataclasses.replace(CONFIGS["mini_cait"], no_decay_1d=exempt, lr=0.1, weight_decay=0.5)
    model = trained_module(cfg)
    run = Run(cfg, 0, model, list(model.parameters()))
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.5, 1.0)  # nonzero everywhere, so that decay shows (biases start at zero)
            p.grad = torch.zeros_like(p)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    run.optimizer.step()
    spared = {n for n, p in model.named_parameters() if p.ndim <= 1} | {"pos_embed", "cls_token"}
    assert {"pos_embed", "cls_token", "blocks.0.gamma_1", "blocks.0.norm1.bias"} <= spared
    for name, p in model.named_parameters():
        shrunk = torch.allclose(p, before[name] * (1 - 0.1 * 0.5))
        assert shrunk or torch.equal(p, before[name]), name
        assert shrunk != (exempt and name in spared), name
