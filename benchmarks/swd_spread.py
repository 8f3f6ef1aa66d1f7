"""Spread of the sliced Wasserstein distance: how much one call's value moves with its random
projections and with its random patches (issue 14: "about 3% sd at the default count").

Setup: scikit-learn's digits (:func:`tfgan_app.data.load_digits_arrays`, all 1,797), as 8x8
images and padded with background to 28x28 like MNIST (most patches flat). "real" = images
0-399, compared with images 400-799 ("real vs real") or with those plus Gaussian noise of
std 0.3, clipped ("real vs noisy"). For each case:

* projection sd: one call with ``random_sampling_count=64`` (seed 0); the standard deviation
  of the SWD of one draw of 147 projections is ``swd_stderr * sqrt(64)``; at ``R`` draws it
  is that over ``sqrt(R)``. The patches are fixed within the call.
* total sd: the standard deviation of ``swd`` over seeds 0..11 (new patches and
  projections each time) at ``R = 1`` (TF-GAN's default) and ``R = 4`` (this package's).

All figures are relative to the mean, deterministic for the seeds (no timings). Usage:
``python benchmarks/swd_spread.py [--seeds 12]``; prints a Markdown table and writes
``benchmarks/results/swd_spread.json``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import _common  # noqa: E402

import tfgan_app.evaluation as E  # noqa: E402
from tfgan_app.data import load_digits_arrays  # noqa: E402


def _cases():
    x, _ = load_digits_arrays("all")
    rng = np.random.default_rng(0)
    pad = np.pad(x, ((0, 0), (10, 10), (10, 10), (0, 0)), constant_values=-1.0)

    def noisy(a):
        return np.clip(a + rng.normal(0, 0.3, a.shape), -1, 1).astype(np.float32)

    return {"digits 8x8, real vs noisy": (x[:400], noisy(x[400:800])),
            "digits 8x8, real vs real": (x[:400], x[400:800]),
            "digits on 28x28, real vs noisy": (pad[:400], noisy(pad[400:800])),
            "digits on 28x28, real vs real": (pad[:400], pad[400:800])}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=12)
    args = ap.parse_args(argv)
    rows = []
    for name, (real, other) in _cases().items():
        many = E.sliced_wasserstein_distance(real, other, random_sampling_count=64, seed=0)
        one_draw = many["swd_stderr"] * 8.0 / many["swd"]
        total = {}
        for count in (1, 4):
            values = [E.sliced_wasserstein_distance(real, other, random_sampling_count=count,
                                                    seed=s)["swd"] for s in range(args.seeds)]
            total[count] = float(np.std(values, ddof=1) / np.mean(values))
        rows.append({"case": name, "swd": many["swd"], "flat_patches": many["flat_patches"],
                     "projection_sd_R1": one_draw, "projection_sd_R4": one_draw / 2.0,
                     "total_sd_R1": total[1], "total_sd_R4": total[4]})
        print(f"done: {name}", flush=True)
    print(f"\nSWD spread relative to its mean, scikit-learn digits, 400 vs 400 images, "
          f"{args.seeds} seeds\n")
    print("| case | SWD | flat patches (real) | projection sd, 1 draw | 4 draws | total sd, 1 draw "
          "| 4 draws |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['case']} | {r['swd']:.4g} | {r['flat_patches']['real']:.0%} | "
              f"{r['projection_sd_R1']:.1%} | {r['projection_sd_R4']:.1%} | "
              f"{r['total_sd_R1']:.1%} | {r['total_sd_R4']:.1%} |")
    print(f"wrote {_common.write('swd_spread', {'seeds': args.seeds, 'images_per_set': 400, 'rows': rows})}")
    return rows


if __name__ == "__main__":
    main()
