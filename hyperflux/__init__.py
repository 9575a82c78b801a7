"""Hyperflux pruning (learned mask logits, flux and pressure), its baselines and the Neural Pruning Law, as reproducible notebooks

Modules:

- `hyperflux.baselines`: The methods Hyperflux is compared with, as training methods of the shared engine: iterative pruning during training (magnitude, Taylor), IMP with weight rewinding, gradual magnitude pruning, and pruning at initialisation (SNIP, GraSP, SynFlow, random) followed by training.
- `hyperflux.cluster`: Running the sweep on a Slurm cluster through submitit: resources per run from the sweep file, runs submitted as job arrays in waves that respect `depends_on`, DDP jobs for multi-GPU runs, requeue-and-resume on time-out, each job recorded in its run folder (job.json), and what a profile costs in GPU-hours.
- `hyperflux.config`: The settings of one training run as one typed schema: `TrainConfig` with per-field metadata (flag, help, whether it changes results), the one coercion every entry point uses, the recipes as data, and the run key.
- `hyperflux.control`: Density control for Hyperflux: holding an exact weight budget by a uniform shift of the mask logits, the reference trajectory at fractional epochs, a proportional-integral pressure controller, and the tracking error.
- `hyperflux.data`: Data sets (digits, MNIST, Fashion-MNIST, CIFAR-10/100, ImageNet folders, synthetic) and their loaders: device-resident tensors with on-device batch augmentation, and a seeded per-epoch order that a resumed run replays.
- `hyperflux.engine`: The training engine: one loop for every method (Hyperflux and the baselines) with the two-stage schedule, separate optimisers for weights and masks, AMP, a checkpoint after every epoch with exact resume, DDP, and run folders with tidy metrics.
- `hyperflux.executor`: Executing the runs of a sweep on this machine: each run is a papermill execution of its experiment notebook in its own kernel (finished runs are skipped, interrupted ones resume, N at once), and a failing run never stops the others; a run that starts from another run waits for it, and a preflight check says what is missing before any kernel starts; the state of every run, here or on Slurm (`hyperflux.cluster`), read from its folder.
- `hyperflux.hyperflux_method`: The Hyperflux method (A.9) as a training method of the shared engine: learned masks under pressure from the trajectory scheduler, held near it by a funnel, landing exactly on the target, then regrowth (the weights fine-tune the landed mask by default).
- `hyperflux.inits`: Where a run's starting weights come from: a state-dict file, another run of the sweep (`run:FOLDER/model.pt`), or torchvision's published weights in torch.hub's cache (`torchvision:ResNet50_Weights.IMAGENET1K_V1`).
- `hyperflux.law`: The Neural Pruning Law: read minimum-saliency/density measurements, fit the power law S = c·γ^(−α) with intervals, the quadratic log-log law of v2, detect the three regions, and draw the figures.
- `hyperflux.lightning`: `hyperflux.lightning.HyperfluxCallback`: Hyperflux in a PyTorch Lightning `Trainer`. The callback holds a `hyperflux.Pruner` and drives it from the trainer's hooks, so a `LightningModule` is pruned to exactly the target sparsity without a line of its code changed. An optional extra: `pip install -e '.[lightning]'`.
- `hyperflux.masks`: One learned mask logit per prunable weight, on any model: hard mask forward, scaled straight-through backward, density accounting, and baking masks into a plain model and back.
- `hyperflux.methods`: The method registry (one record per method: its class, label, colour, law family and place in legends), the narrow context a method sees of a run, the `Method` base class with its hooks, and the shared learning-rate schedules.
- `hyperflux.models`: The paper's architectures, sized by the data set: LeNet-300-100, LeNet-5, ResNet-50 (CIFAR and ImageNet), VGG-19 (CIFAR), DeiT-Tiny/Small; local pretrained weights; `hyperflux info`.
- `hyperflux.paper`: `make paper` / `hyperflux paper`: run a profile of the sweep, then build its figures and tables into `figures/<profile>/` with a manifest of how they were made (commit, clean tree or not, engine version of every run) and a fingerprint of everything the report depends on, so that stale figures cannot pass for current ones.
- `hyperflux.plugins`: Code that registers saliencies, methods, data sets or models outside the package: a module, a Python file or a notebook (a forked tutorial), imported into every run's kernel and into the report process of a sweep.
- `hyperflux.pressure`: The pressure term, the flux readout, flip statistics, and the pressure schedulers: the reference trajectory with bisection, the bang-bang controller with inertia, constant and step-wise pressure.
- `hyperflux.pruner`: `hyperflux.Pruner`: Hyperflux in your own training loop. It attaches the masks and owns their optimiser, the pressure, the scheduler with its density control (funnel), the landing on the target and the regrowth: the engine's `Hyperflux` method itself, driven by three calls.
- `hyperflux.report`: Figures (PNG and PDF) and tables (Markdown, LaTeX, CSV) built only from run folders and the reference data shipped with hyperflux: every figure family of the paper that the sweep's runs support.
- `hyperflux.runfolder`: What a run folder holds, named in one place: the file names, the metric columns, and the typed reading and writing of params.json, metrics.csv and final.json.
- `hyperflux.runlock`: One owner per run folder: a lock file (the `filelock` package) and an owner record beside it (host, pid, since when), so that two processes never train the same run at once, and a lock left by a killed process is taken over safely.
- `hyperflux.saliency`: A registry of saliency metrics (magnitude, Taylor, SNIP, GraSP, SynFlow, random, flux), each one small function from a masked model and some batches to one score per prunable weight, and the one shared step that turns scores into keep masks.
- `hyperflux.sparse`: FLOPs of a pruned model (PAPER A.12), and sparse inference: a baked model turned into one whose pruned layers use a sparse (or compacted) representation, chosen per layer by measuring what is fastest on this machine.
- `hyperflux.sweep`: The sweep as data: `paper.yaml` in, run specs out. Paths, the keys a sweep file may hold, profile parsing and grid expansion; each run's settings become one validated config, and its folder is named by the config's run key; a run may start from another run of its profile (`init: {run: {...}}`). Nothing here runs, trains or draws (plugins named by the sweep are imported)."""

__version__ = "0.1.0"

from .core import ensure_torchvision as _ensure_torchvision

# how torchvision's compiled ops are available here: native, stubbed (CPU torch + CUDA torchvision), absent
TORCHVISION_OPS = _ensure_torchvision()

# the built-in training methods register themselves in `hyperflux.methods` when their modules are imported: importing
# them here makes the registry complete whichever module of the package is imported first
from . import baselines, hyperflux_method  # noqa: E402, F401

# the public API of pruning in your own training loop (nbs/05f_pruner.ipynb)
from .pruner import Pruner  # noqa: E402, F401
