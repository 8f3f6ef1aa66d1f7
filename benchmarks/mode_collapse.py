"""Mode collapse on the 2-D mixtures: modes captured and % high quality per remedy.

Usage: python benchmarks/mode_collapse.py [--seeds 5] [--datasets ring,grid]
                                         [--configs NAME,...] [--epochs N]

Protocol (VEEGAN, Srivastava et al. 2017): after training, draw 2,500 samples; a sample is high
quality when it lies within 3 standard deviations of its nearest mode; a mode is captured when
it has at least one high-quality sample. Data (PacGAN's settings, recorded in each run's
config): ring = 8 Gaussians on a circle of radius 1, std 0.01; grid = 25 Gaussians on a 5x5 grid
with spacing 2, std 0.05. Each configuration is the ``ring``/``grid`` preset with the overrides
below, trained with seeds 0..N-1; the table gives mean ± std over seeds beside the published
rows of VEEGAN's Table 1 (their ring: radius 2, std 0.02 -- not the same data, for orientation).

Every remedy row is the common baseline ``tfgan_app.presets.MIXTURE_BASELINE`` (2 x 128 MLPs,
non-saturating loss with 0.25 smoothing, Adam 1e-3 / 0.5, batch 256, 20 epochs) with that row's
overrides; ``preset default`` is the ``ring``/``grid`` preset exactly as ``tfgan-app train
--preset ring|grid`` runs it: the presets default to the best configuration measured (the
baseline with packing of 2 and 200 epochs of linearly decayed learning rates; on the grid also
instance noise, see ``tfgan_app.presets``).

Writes benchmarks/results/mode_collapse.{json,md}; ``--merge`` replaces only the rows it
measured in an existing result (e.g. ``--datasets grid --configs "preset default" --merge``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RESULTS, table, write  # noqa: E402

# name -> settings overrides applied on top of the ring/grid preset
CONFIGS = {
    "minimax": {"loss": "minimax", "loss_options": {"label_smoothing": 0.0}},
    "modified": {"loss": "modified", "loss_options": {"label_smoothing": 0.0}},
    "wgan (clip 0.01)": {"loss": "wasserstein", "weight_clip": 0.01, "d_steps": 5,
                         "d_lr": 5e-5, "g_lr": 5e-5, "beta_1": 0.5},
    "wgan-gp": {"loss": "wasserstein", "gradient_penalty": 0.1, "d_steps": 5,
                "beta_1": 0.5, "beta_2": 0.9},
    "unrolled (5 steps)": {"loss": "modified", "loss_options": {"label_smoothing": 0.0},
                           "unrolled_steps": 5},
    "instance noise": {"loss": "modified", "loss_options": {"label_smoothing": 0.0},
                       "instance_noise": 0.1},
    "packing (pack 2)": {"loss": "modified", "loss_options": {"label_smoothing": 0.0},
                         "discriminator": {"builder": "mlp", "hidden_units": [128, 128],
                                           "pack": 2}},
    "preset default": None,  # the ring/grid preset itself
}

PUBLISHED = {  # VEEGAN, Table 1 (their own mixtures; quoted for orientation)
    "ring": [("GAN (VEEGAN paper)", 1.0, 99.3), ("Unrolled GAN (VEEGAN paper)", 7.6, 35.6),
             ("VEEGAN (VEEGAN paper)", 8.0, 52.9)],
    "grid": [("GAN (VEEGAN paper)", 3.3, 0.5), ("Unrolled GAN (VEEGAN paper)", 23.6, 16.0),
             ("VEEGAN (VEEGAN paper)", 24.6, 40.0)],
}


def run_one(dataset, overrides, seed, epochs):
    """Train and score one run: ``overrides`` on the common baseline, or (``None``) the
    ``dataset`` preset as it is."""
    from tfgan_app import presets, train

    # Baseline rows replace every setting (the package defaults, the dataset, the baseline,
    # the row's overrides): nothing of the dataset's preset (e.g. its remedy) carries over.
    config = None if overrides is None else {**presets.defaults(), "dataset": dataset,
                                             **presets.MIXTURE_BASELINE, **overrides}
    settings = train.resolve_settings(dataset, config=config, seed=seed, epochs=epochs)
    assert settings["report"] == "mode_coverage", settings["report"]
    with tempfile.TemporaryDirectory() as out:
        # train() scores 2,500 samples (seed 10,000 + seed) with mode_coverage: report.json
        report = train.train(settings, out, verbose=0)["report"]
    return {k: report[k] for k in ("modes_captured", "num_modes", "high_quality",
                                   "mode_counts")}


def main(argv=None):
    import numpy as np

    from tfgan_app import presets

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--datasets", default="ring,grid")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--epochs", type=int, default=None, help="override the presets' epochs")
    p.add_argument("--merge", action="store_true",
                   help="update only the measured rows of an existing result")
    args = p.parse_args(argv)
    names = [c for c in args.configs.split(",") if c]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        p.error(f"unknown configs {unknown}; valid: {list(CONFIGS)}")
    rows, raw = [], {}
    for dataset in args.datasets.split(","):
        for name in names:
            t0 = time.time()
            per_seed = [run_one(dataset, CONFIGS[name], s, args.epochs) for s in range(args.seeds)]
            modes = np.array([r["modes_captured"] for r in per_seed], float)
            hq = np.array([r["high_quality"] for r in per_seed]) * 100
            raw[f"{dataset}/{name}"] = per_seed
            rows.append({"dataset": dataset, "configuration": name,
                         "modes": f"{modes.mean():.1f} ± {modes.std():.1f}",
                         "high quality %": f"{hq.mean():.1f} ± {hq.std():.1f}",
                         "modes_mean": float(modes.mean()), "hq_mean": float(hq.mean()),
                         "seconds": round(time.time() - t0, 1)})
            print(f"{dataset:5s} {name:22s} modes {rows[-1]['modes']:>12s}  "
                  f"high quality {rows[-1]['high quality %']:>14s}  ({rows[-1]['seconds']} s)",
                  flush=True)
        for label, m, q in PUBLISHED[dataset]:
            rows.append({"dataset": dataset, "configuration": label, "modes": f"{m}",
                         "high quality %": f"{q}"})
    configs = {n: CONFIGS[n] for n in names}
    previous = os.path.join(RESULTS, "mode_collapse.json")
    if args.merge and os.path.exists(previous):
        with open(previous, encoding="utf-8") as f:
            old = json.load(f)
        if old.get("seeds") != args.seeds:
            p.error(f"--merge: the existing result has {old.get('seeds')} seeds, not {args.seeds}")
        new = {(r["dataset"], r["configuration"]): r for r in rows}
        merged = [new.pop((r["dataset"], r["configuration"]), r) for r in old["rows"]]
        rows = merged + list(new.values())
        # datasets in their first-seen order; each one's measured rows in CONFIGS order,
        # then the published rows
        order = list(dict.fromkeys(r["dataset"] for r in rows))
        rank = {n: i for i, n in enumerate(CONFIGS)}
        rows.sort(key=lambda r: (order.index(r["dataset"]),
                                 rank.get(r["configuration"], len(rank))))
        raw = {**old.get("per_seed", {}), **raw}
        configs = {**old.get("configs", {}), **configs}
    md = table(rows, ["dataset", "configuration", "modes", "high quality %"])
    print()
    print(md)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "mode_collapse.md"), "w") as f:
        f.write(f"Seeds: {args.seeds}; VEEGAN protocol (2,500 samples, 3 std). Remedy rows: the "
                f"common baseline (tfgan_app.presets.MIXTURE_BASELINE) with the row's "
                f"overrides; 'preset default': the ring/grid preset as it is.\n\n{md}\n")
    path = write("mode_collapse", {"seeds": args.seeds, "rows": rows, "per_seed": raw,
                                   "configs": configs, "baseline": presets.MIXTURE_BASELINE})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
