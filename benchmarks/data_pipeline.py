"""Data pipeline: images per second of hyperflux's device-resident CIFAR loader (uint8 images on the device, random
crop with 4-pixel padding, flip and normalisation done per batch on the device) vs a torchvision DataLoader with the
usual transforms (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize) on the same images.

The images are a small CIFAR-10 written in the real format (python pickle batches, random pixels): what matters here
is the pipeline, not the pictures. Epochs of the loaders are interleaved; each figure is the median over rounds.

Run alone: python benchmarks/data_pipeline.py [--quick] [--device cuda]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, log, set_threads, summary  # noqa: E402

from hyperflux.data import dataset_info, get_data, read_cifar_batch, write_cifar_batch  # noqa: E402


def write_tiny_cifar10(root: Path, per_batch: int, seed: int = 0) -> Path:
    "Five training batches of `per_batch` images and a test batch, in CIFAR-10's python format, under `root`."
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(folder / name, rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8),
                          rng.integers(0, 10, per_batch))
    return folder


class CifarLikeTorchvision(torch.utils.data.Dataset):
    "What torchvision.datasets.CIFAR10 does per item: HWC uint8 array -> PIL image -> transform."
    def __init__(self, folder: Path, transform):
        from PIL import Image
        self.Image = Image
        xs, ys = zip(*(read_cifar_batch(folder / f"data_batch_{i}", "labels") for i in range(1, 6)))
        self.data = np.concatenate(xs).transpose(0, 2, 3, 1).copy()   # torchvision keeps (N, 32, 32, 3)
        self.targets = np.concatenate(ys).tolist()
        self.transform = transform

    def __len__(self): return len(self.data)

    def __getitem__(self, i):
        return self.transform(self.Image.fromarray(self.data[i])), self.targets[i]


def torchvision_loader(folder: Path, batch_size: int, workers: int, device: str):
    "The usual CIFAR training pipeline with torchvision transforms."
    import torchvision.transforms as T
    info = dataset_info("cifar10")
    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize(info.mean, info.std)])
    ds = CifarLikeTorchvision(folder, tf)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                       pin_memory=device.startswith("cuda"), persistent_workers=workers > 0,
                                       drop_last=False)


def epoch_fn(loader, device: str, set_epoch: bool):
    "One pass over `loader`, moving batches to `device` (what a training loop receives)."
    state = {"epoch": 0}
    def run():
        state["epoch"] += 1
        if set_epoch: loader.set_epoch(state["epoch"])
        n = 0
        for x, y in loader:
            x = x.to(device, non_blocking=True); n += len(x)
        return n
    return run


def run(device: str = "cpu", quick: bool = False, batch_size: int = 128) -> dict:
    "The data_pipeline entry of results.json: images/s of each pipeline and the ratios."
    per_batch = 100 if quick else 1000
    rounds = 2 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_tiny_cifar10(Path(tmp), per_batch)
        n_images = 5 * per_batch
        ours = get_data("cifar10", root=tmp, batch_size=batch_size, device=device, download=False)
        fns = {"hyperflux_device_loader": epoch_fn(ours.train, device, True),
               "torchvision_workers0": epoch_fn(torchvision_loader(folder, batch_size, 0, device), device, False)}
        if not quick:
            fns["torchvision_workers2"] = epoch_fn(torchvision_loader(folder, batch_size, 2, device), device, False)
        log(f"data pipeline: {n_images} CIFAR-shaped training images, batch {batch_size}, "
            f"{rounds} interleaved epochs each")
        times = interleaved(fns, rounds=rounds, warmup=1, device=device)
    out = dict(device=device, images_per_epoch=n_images, batch=batch_size, rounds=rounds,
               augmentation="random crop (pad 4) + horizontal flip + normalise")
    for name, ts in times.items():
        out[f"{name}_images_per_s"] = summary([n_images / t for t in ts], 0)
    base = out["hyperflux_device_loader_images_per_s"]["median"]
    for name in times:
        if name.startswith("torchvision"):
            out[f"speedup_vs_{name}"] = round(base / out[f"{name}_images_per_s"]["median"], 2)
    log("  images/s: " + ", ".join(f"{k}: {out[f'{k}_images_per_s']['median']:.0f}" for k in times))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    set_threads(a.threads)
    print(json.dumps(run(a.device, a.quick), indent=1))


if __name__ == "__main__":
    main()
