"""Named, documented training recipes (used by ``tfgan-app train --preset NAME`` and the tests).

A preset is a flat dict of settings: :func:`tfgan_app.options.default_settings` (every
setting, defined once in :mod:`tfgan_app.options` and tabled in the README) updated with the
preset's own values. ``--set key=value`` (dotted keys reach into nested dicts, values are
parsed as JSON when they parse) and ``--config FILE.json`` override it; each value is
validated by its option. The resolved settings are written to the run's ``config.json``.
Measured figures for the presets live in the README and ``benchmarks/results/``.
"""

from __future__ import annotations

import copy
import json

from tfgan_app import options

_BASE = options.default_settings()

PRESETS: dict[str, dict] = {
    "d2l-gaussian": {
        "description": "The d2l.ai GAN chapter: learn N(b, A^T A) from 1000 points with an "
                       "affine generator (20 epochs, batch 8, a second on a CPU)",
        "dataset": "gaussian",
        "dataset_options": {"n": 1000},
        "batch_size": 8,
        "epochs": 20,
        "latent_dim": 2,
        "generator": {"builder": "toy"},
        "discriminator": {"builder": "toy"},
        # Binary cross-entropy with the label-1 trick for G = TF-GAN's non-saturating pair,
        # without TF-GAN's default 0.25 label smoothing (d2l uses none).
        "loss": "modified",
        "loss_options": {"label_smoothing": 0.0},
        "d_lr": 0.05,
        "g_lr": 0.005,
        "beta_1": 0.9,
        "jit_compile": True,
        "steps_per_execution": 125,  # one epoch of 1000 / 8 per compiled call
        "report": "gaussian",
    },
}

_DCGAN_ADAM = {"d_lr": 2e-4, "g_lr": 2e-4, "beta_1": 0.5, "beta_2": 0.999}

# The 2-D mixtures: the baseline every remedy of benchmarks/mode_collapse.py is measured on
# (MLPs of 2 x 128 units, the non-saturating loss with TF-GAN's default 0.25 smoothing, Adam
# 1e-3 / 0.5, batch 256, 20 epochs). The ``ring`` and ``grid`` presets default to the best
# configuration measured (benchmarks/results/mode_collapse.md, seeds 0-4, VEEGAN protocol):
# that baseline with PacGAN packing of 2 (D judges pairs of samples), learning rates decayed
# linearly to 1% over 200 epochs, and, on the grid, annealed instance noise without smoothing.
# Packing keeps every mode; the long decayed run sharpens each mode (README, "Training
# failures and their remedies", has the measured table).
MIXTURE_BASELINE = {
    "batch_size": 256,
    "epochs": 20,
    "latent_dim": 2,
    "generator": {"builder": "mlp", "hidden_units": [128, 128]},
    "discriminator": {"builder": "mlp", "hidden_units": [128, 128]},
    "loss": "modified",
    "d_lr": 1e-3,
    "g_lr": 1e-3,
    "beta_1": 0.5,
    "jit_compile": True,
    "steps_per_execution": 50,
    "report": "mode_coverage",  # report.json: VEEGAN modes captured and % high quality
}

# What the ring and grid presets add to the baseline (see above).
_MIXTURE_BEST = {
    "discriminator": {"builder": "mlp", "hidden_units": [128, 128], "pack": 2},
    "epochs": 200,
    "lr_decay": "linear",  # to lr_decay_floor (0.01) x lr at the last step
    "plot_every": 10,
    "backup_every": 10,
}

# Shared by the two digits presets (8x8x1, 1,438 training digits).
_DIGITS = {
    "dataset": "digits",
    "batch_size": 64,
    "latent_dim": 32,
    "loss": "modified",
    **_DCGAN_ADAM,
    "ema_decay": 0.999,
    # XLA is slower for these small convolutions on CPU (README, "Presets")
    "jit_compile": False,
    "steps_per_execution": 22,  # one epoch of 1438 // 64 per compiled call
    # hundreds of one-second epochs: pictures and backups every 25 epochs, not every epoch
    "plot_every": 25,
    "backup_every": 25,
}

# Shared by the TFDS DCGAN presets (MNIST, CIFAR-10): Radford et al.'s settings.
_TFDS_DCGAN = {
    "batch_size": 128,
    "latent_dim": 100,
    "generator": {"builder": "dcgan", "base_filters": 64},
    "discriminator": {"builder": "dcgan", "base_filters": 64},
    "loss": "modified",
    **_DCGAN_ADAM,
    "ema_decay": 0.999,
}

PRESETS.update({
    "digits-dcgan": {
        "description": "DCGAN on scikit-learn's 8x8 digits with InfoGAN's 20-value code "
                       "and lazy R1 (offline default; 13,200 steps, minutes on 2 CPU cores)",
        **_DIGITS,
        # long run, wider D: see benchmarks/digits_quality.py and the README for its quality
        "epochs": 600,
        "generator": {"builder": "dcgan", "base_filters": 32},
        "discriminator": {"builder": "dcgan", "base_filters": 64},
        "loss_options": {"label_smoothing": 0.0},
        # InfoGAN's 20-value categorical code in z's first 20 entries (32 continuous ones
        # beside it): G jumps between digits instead of drawing in-between shapes, about two
        # codes a digit class (issue #16; benchmarks/augmentation.py, README "Augmentation")
        "categorical_code": 20,
        "latent_dim": 52,
        "info_weight": 0.5,
        # lazy R1 (StyleGAN2: every 16 D steps at 16 x gamma; a few % of the step's cost):
        # FID within 2x of the floor on every seed 0-4 with i.i.d. codes too (issue #16)
        "r1_gamma": 0.05,
        "r1_interval": 16,
    },
    "digits-cgan": {
        "description": "Conditional DCGAN on the 8x8 digits: label embedding into G, "
                       "projection discriminator; generate(n, labels=...)",
        **_DIGITS,
        "epochs": 300,
        "num_classes": 10,
        "generator": {"builder": "conditional_dcgan", "base_filters": 32},
        "discriminator": {"builder": "conditional_dcgan", "base_filters": 32},
    },
    "mnist-dcgan": {
        "description": "DCGAN on MNIST from TFDS (needs the dataset downloaded, or "
                       "--dataset idx:IMAGES,LABELS)",
        "dataset": "mnist",
        **_TFDS_DCGAN,
        "epochs": 20,
    },
    "mnist-wgan-gp": {
        "description": "WGAN-GP on MNIST (Gulrajani et al.: lambda 10, 5 critic steps, Adam "
                       "1e-4 / 0.5 / 0.9, layer norm in the critic)",
        "dataset": "mnist",
        "batch_size": 64,
        "epochs": 20,
        "latent_dim": 128,
        "generator": {"builder": "dcgan", "base_filters": 64},
        "discriminator": {"builder": "dcgan", "base_filters": 64, "norm": "layer"},
        "loss": "wasserstein",
        "gradient_penalty": 10.0,
        "d_steps": 5,
        "d_lr": 1e-4,
        "g_lr": 1e-4,
        "beta_1": 0.5,
        "beta_2": 0.9,
    },
    "cifar10-dcgan": {
        "description": "DCGAN on CIFAR-10 32x32x3 from TFDS (needs the dataset downloaded)",
        "dataset": "cifar10",
        **_TFDS_DCGAN,
        "epochs": 30,
    },
    "ring": {
        "description": "8 Gaussians on a circle (radius 1, std 0.01): the mode-collapse "
                       "benchmark's ring, PacGAN packing of 2, 200 epochs with lr decay",
        "dataset": "ring",
        **MIXTURE_BASELINE,
        **_MIXTURE_BEST,
    },
    "grid": {
        "description": "25 Gaussians on a 5x5 grid (spacing 2, std 0.05): the mode-collapse "
                       "benchmark's grid, packing of 2, 200 epochs with lr decay, instance noise",
        "dataset": "grid",
        **MIXTURE_BASELINE,
        **_MIXTURE_BEST,
        # instance noise (std 0.1 on D's inputs, annealed to 0 over the run), no smoothing
        "loss_options": {"label_smoothing": 0.0},
        "instance_noise": 0.1,
    },
})

# Image-to-image translation (tfgan_app.translation): pix2pix's recipe -- a U-Net generator,
# a PatchGAN discriminator judging (image, source) pairs, L1 x 100 plus the non-saturating
# loss, Adam 2e-4 / 0.5 -- at batch 32 on small offline images (the paper trains at batch 1).
_PIX2PIX = {
    "batch_size": 32,
    "loss": "modified",
    "loss_options": {"label_smoothing": 0.0},
    **_DCGAN_ADAM,
    "translation": {"reconstruction": "l1", "reconstruction_weight": 100.0},
    "generator": {"builder": "unet", "base_filters": 32, "max_filters": 256},
    "discriminator": {"builder": "patchgan", "base_filters": 32, "receptive_field": 34},
    "jit_compile": False,
    "plot_every": 5,
    "backup_every": 5,
    "report": "translation",  # held-out PSNR/SSIM/L1 beside the input's own baseline
}

PRESETS.update({
    "digits-inpaint": {
        "description": "pix2pix inpainting: scikit-learn's digits at 32x32 with the centre "
                       "square (half the side) masked; U-Net + PatchGAN",
        **_PIX2PIX,
        "dataset": "pairs:digits",
        "dataset_options": {"task": {"name": "inpaint", "mask": "center"}, "image_size": 32},
        "epochs": 30,
    },
    "digits-edges": {
        "description": "pix2pix edges-to-digits: Sobel edge maps of the 32x32 digits to the "
                       "digits; U-Net + PatchGAN",
        **_PIX2PIX,
        "dataset": "pairs:digits",
        "dataset_options": {"task": {"name": "edges"}, "image_size": 32},
        "epochs": 30,
    },
    # The generator learns a residual over bicubic upsampling (input_skip; its last conv starts
    # at zero) with EDSR's trunk (no batch normalisation) and pix2pix's L1 x 100, on 64x64
    # patches (16x16 inputs: an 8x8 input is mostly border) of seven photos, each pair shown in
    # any of the square's eight symmetries (flip + rotate). With the earlier recipe (32x32
    # patches of two photos, batch norm, a 9x9 last conv, L2, G lr 1e-3) it stayed at bicubic
    # (benchmarks/results/translation.md).
    "photo-superres-x4": {
        "description": "SRGAN-style x4 super-resolution of 64x64 textured patches of seven "
                       "sample photos (scikit-learn's and scikit-image's; held-out patches from "
                       "unseen columns)",
        **_PIX2PIX,
        "dataset": "pairs:photos",
        "dataset_options": {"task": {"name": "superres", "factor": 4}, "image_size": 64,
                            "num_patches": 4096, "flip": True, "rotate": True},
        "generator": {"builder": "srgan", "num_blocks": 4, "filters": 32, "input_skip": True,
                      "norm": "none"},
        # adversarial weight 1 cost 1.6-2.0 dB of PSNR (seeds 0-2); the target allows 1.5
        "translation": {"reconstruction": "l1", "reconstruction_weight": 100.0,
                        "adversarial_weight": 0.3},
        "g_lr": 5e-4,
        "beta_1": 0.9,
        "epochs": 4,
    },
})

# CycleGAN (issue #19) on the offline unpaired digits (unpaired:digits: one half of the digits
# as A, the other half inverted with thickened strokes as B). The paper's losses (least
# squares, cycle weight 10), pool of 50 and schedule (Adam 2e-4 / 0.5, constant then linearly
# to 0 over the second half) with networks sized for 32x32; no identity loss, which would pull
# G towards the identity that this inverting mapping is far from. Measured on held-out digits
# in benchmarks/results/cyclegan.md (seeds 0-2).
PRESETS["digits-cyclegan"] = {
    "description": "CycleGAN, unpaired: scikit-learn's digits (A) to the other half of the "
                   "digits inverted with thickened strokes (B), 32x32; ResNet generators (3 "
                   "blocks) + PatchGANs",
    "dataset": "unpaired:digits",
    "dataset_options": {"image_size": 32},
    "batch_size": 8,
    "epochs": 6,
    "generator": {"builder": "resnet", "num_blocks": 3, "base_filters": 16,
                  "downsamplings": 2},
    "discriminator": {"builder": "patchgan", "conditional": False, "norm": "instance",
                      "base_filters": 16, "receptive_field": 34},
    "loss": "least_squares",
    "cyclegan": {"cycle_weight": 10.0, "identity_weight": 0.0, "pool_size": 50},
    **_DCGAN_ADAM,
    "lr_decay": "linear_second_half",
    "jit_compile": True,
    "plot_every": 2,
    "backup_every": 2,
    "report": "cyclegan",  # held-out translation vs identity/histogram, cycle PSNR, labels
}

DEFAULT_PRESET = "digits-dcgan"


def defaults() -> dict:
    """The settings every preset starts from (a fresh copy): no remedy switched on."""
    return options.default_settings()


def names() -> list[str]:
    """Preset names, sorted."""
    return sorted(PRESETS)


def describe() -> list[tuple[str, str]]:
    """``(name, one-line description)`` for every preset."""
    return [(n, PRESETS[n]["description"]) for n in names()]


def get(name: str) -> dict:
    """The full settings of preset ``name`` (a fresh copy). Unknown names raise ``ValueError``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(names())}")
    settings = copy.deepcopy(_BASE)
    settings.update(copy.deepcopy(PRESETS[name]))
    settings["preset"] = name
    return settings


def parse_value(text: str):
    """Parse a ``--set`` value: JSON when it parses (numbers, true/false/null, lists, dicts),
    else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(settings: dict, overrides) -> dict:
    """Apply ``key=value`` strings (or a dict) to ``settings`` (copied); dotted keys nest.

    Unknown top-level keys raise ``ValueError`` listing the valid ones, so typos are caught.
    """
    settings = copy.deepcopy(settings)
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        items = []
        for item in overrides or []:
            if "=" not in item:
                raise ValueError(f"--set expects key=value, got {item!r}")
            key, value = item.split("=", 1)
            items.append((key.strip(), parse_value(value.strip())))
    for key, value in items:
        parts = key.split(".")
        if parts[0] not in settings:
            raise ValueError(f"unknown setting {parts[0]!r}; valid settings: "
                             f"{', '.join(sorted(settings))}")
        if len(parts) == 1 and parts[0] != "preset":
            value = options.check_setting(key, value)
        target = settings
        for p in parts[:-1]:
            if not isinstance(target.get(p), dict):
                target[p] = {}
            target = target[p]
        target[parts[-1]] = value
    return settings
