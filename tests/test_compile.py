"""`--compile` on every paper architecture with masks attached: traced once, no recompiles (issue 12).

With the former per-layer parametrizations, torch.compile of a masked ResNet-50 hit dynamo's recompile limit (8) in
torchvision's Bottleneck.forward ("tensor 'x' size mismatch at index 1"). Here each architecture, masks attached,
is compiled with the "aot_eager" backend (dynamo and AOTAutograd trace forward and backward; no code is generated, so
it is quick on CPU) and trained for 3 steps the way the engine trains (SGD on the weights, Adam on the logits), with
masks pruned in place between steps, in channels_last layout where the model has convolutions: the graphs compiled in
the first step must be all there ever are.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch._dynamo.testing import CompileCounterWithBackend
from torch._dynamo.utils import counters

from hyperflux.masks import attach_masks, mask_parameters, to_channels_last, weight_parameters
from hyperflux.models import get_model

ARCHS = {   # arch -> (input shape, batch)
    "lenet300": ((1, 28, 28), 4),
    "lenet5": ((1, 28, 28), 4),
    "resnet50": ((3, 32, 32), 2),
    "vgg19": ((3, 32, 32), 2),
    "deit_tiny": ((3, 32, 32), 2),
}
STEPS = 3


def compiled_training(arch: str, channels_last: bool) -> dict:
    "Graphs compiled by each of STEPS training steps of masked `arch` under torch.compile (aot_eager)."
    shape, batch = ARCHS[arch]
    torch.manual_seed(0)
    torch._dynamo.reset()
    counters.clear()
    model = attach_masks(get_model(arch, num_classes=10, input_shape=shape), seed=0)
    if channels_last: model = to_channels_last(model)
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    if channels_last: x = x.contiguous(memory_format=torch.channels_last)
    opt_w = torch.optim.SGD(weight_parameters(model), lr=0.01, momentum=0.9)
    opt_m = torch.optim.Adam(mask_parameters(model), lr=1e-3)
    backend = CompileCounterWithBackend("aot_eager")
    net = torch.compile(model, backend=backend)
    frames = []
    for step in range(STEPS):
        loss = F.cross_entropy(net(x), y)
        opt_w.zero_grad(set_to_none=True)
        opt_m.zero_grad(set_to_none=True)
        loss.backward()
        opt_w.step()
        opt_m.step()
        with torch.no_grad(): mask_parameters(model)[0][step::7].fill_(-1.0)   # prune some weights in place
        frames.append(backend.frame_count)
        assert torch.isfinite(loss)
    return dict(frames=frames, graphs=int(counters["stats"]["unique_graphs"]),
                graph_breaks=int(sum(counters["graph_break"].values())))


def _check(arch: str, channels_last: bool) -> dict:
    stats = compiled_training(arch, channels_last)
    print(f"{arch} (channels_last={channels_last}): {stats}")
    assert stats["frames"][0] >= 1, stats
    assert stats["frames"] == [stats["frames"][0]] * STEPS, f"{arch} recompiled after the first step: {stats}"
    assert stats["graphs"] <= 4, f"{arch}: {stats['graphs']} graphs for one model (a graph per layer?): {stats}"
    return stats


@pytest.mark.parametrize("arch", ["lenet300", "lenet5"])
def test_small_models_compile_once(arch):
    _check(arch, channels_last=arch == "lenet5")


@pytest.mark.slow   # about a minute on 2 busy cores: tracing ResNet-50, VGG-19 and DeiT-T forward and backward
@pytest.mark.parametrize("arch", ["resnet50", "vgg19", "deit_tiny"])
def test_paper_models_compile_once(arch):
    _check(arch, channels_last=any(isinstance(m, nn.Conv2d) for m in get_model(arch, num_classes=10,
                                                                                 input_shape=ARCHS[arch][0]).modules()))
