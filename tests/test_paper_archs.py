"""One capped epoch of every paper architecture through the real training path (engine, masks, loaders) on synthetic
data of the right shape, on the CPU."""
import pytest

from hyperflux.config import recipe
from hyperflux.engine import train

CASES = {  # arch: synthetic data of the shape the paper trains it on
    "resnet50-cifar": ("resnet50", dict(shape=[3, 32, 32], num_classes=10)),
    "vgg19-cifar100": ("vgg19", dict(shape=[3, 32, 32], num_classes=100)),
    "resnet50-imagenet": ("resnet50", dict(shape=[3, 224, 224], num_classes=1000)),
    "deit_tiny-imagenet": ("deit_tiny", dict(shape=[3, 224, 224], num_classes=1000)),
    "deit_small-cifar": ("deit_small", dict(shape=[3, 32, 32], num_classes=100)),
}


@pytest.mark.parametrize("case", CASES)
def test_one_capped_epoch(case, tmp_path):
    arch, shape = CASES[case]
    cfg = recipe(arch, "synthetic", data_options=dict(shape, train_size=4, test_size=2), batch_size=2, max_batches=1,
                 epochs_prune=1, epochs_regrow=0, sparsity_pct=90.0, progress=False)
    final = train(cfg, tmp_path / case)
    assert final["epochs"] == 1 and 0 <= final["test_acc_pct"] <= 100
    # the pruning stage ends on the target (here its only epoch; without regrowth too), to within one weight
    assert abs(final["density_pct"] / 100 * final["prunable"] - 0.1 * final["prunable"]) <= 1
    assert final["prunable"] > 1_000_000
    assert (tmp_path / case / "model.pt").exists() and (tmp_path / case / "masks.pt").exists()
