"""The augmentation pipeline's speed, now against an earlier version of ``tfgan_app.augment``.

Usage:
  python benchmarks/augment_speed.py [--before REV] [--repeats 5]

Two measurements, both in one process, the versions alternated, medians of ``--repeats``:

* ``op``: one call of ``augment`` forward and backward (the gradient to the images, as G's
  step takes it) inside a ``tf.function``, ``p = 0.1``, policies ``ada`` and ``diffaugment``,
  on batches of 64 images 8x8x1 (the digits preset), 28x28x1 (MNIST) and 32x32x3 (CIFAR-10);
* ``fit``: images/s of the default preset's training (``fit``, its own settings) with the 40-
  value code, without augmentation, with ADA as of ``REV`` and with ADA now (the earlier
  module hooked into the model's ``augment_images``).

``REV`` (default: the commit before the draws were pooled and the matrices composed as a tree)
is read with ``git show REV:tfgan_app/augment.py``, so this needs the repository's history.
Results: ``benchmarks/results/augment_speed.{json,md}``. A timing: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import augmentation as A  # noqa: E402
from _common import RESULTS, machine, table, write  # noqa: E402

NAME = "augment_speed"
BEFORE = "0a848f3"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _module_at(rev):
    """``tfgan_app.augment`` as of ``rev`` (a module object), or a clear error."""
    try:
        src = subprocess.run(["git", "show", f"{rev}:tfgan_app/augment.py"], cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"cannot read tfgan_app/augment.py at {rev!r} with git ({e}); run "
                         "from a clone with its history or pass --before REV")
    path = os.path.join(tempfile.mkdtemp(), f"augment_{rev}.py")
    with open(path, "w") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location(f"augment_{rev}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def op_times(modules, repeats, calls=200):
    import tensorflow as tf

    fns = {}
    for shape in ((64, 8, 8, 1), (64, 28, 28, 1), (64, 32, 32, 3)):
        x = tf.random.uniform(shape, -1, 1, seed=1)
        for policy in ("ada", "diffaugment"):
            for version, mod in modules.items():
                counter = tf.Variable(0, dtype=tf.int64)

                def uniform(k, counter=counter, batch=shape[0]):
                    counter.assign_add(1)
                    return tf.random.stateless_uniform([batch, k], seed=tf.stack([counter, 7]))

                @tf.function
                def step(x, mod=mod, policy=policy, uniform=uniform):
                    with tf.GradientTape() as tape:
                        tape.watch(x)
                        y = mod.augment(x, 0.1, policy, uniform)
                        loss = tf.reduce_sum(y * y)
                    return tape.gradient(loss, x)

                step(x)

                def timed(step=step, x=x):
                    t0 = time.perf_counter()
                    for _ in range(calls):
                        step(x)
                    return (time.perf_counter() - t0) / calls * 1e6
                fns[("x".join(map(str, shape[1:])), policy, version)] = timed
    med = A.alternated_medians(fns, repeats)
    rows = []
    for (shape, policy, version), (m, runs) in med.items():
        rows.append({"images": shape, "policy": policy, "version": version,
                     "us_per_call": round(m, 1), "runs": [round(r, 1) for r in runs]})
    for r in rows:
        before = med[(r["images"], r["policy"], "before")][0]
        r["vs_before"] = round(r["us_per_call"] / before, 3)
    return rows


def fit_throughput(before_module, repeats, steps=220):
    import tensorflow as tf

    def old_pipeline(gan):  # the earlier module on the model's own draws and p
        def hook(x):
            batch = tf.shape(x)[0]
            return before_module.augment(x, gan._augment_state[0], gan._augment_ops,
                                         lambda k: gan.augment_uniform(batch, k))
        gan.augment_images = hook

    fns = {"none": A.fit_timer("info_k40", steps),
           "ada before": A.fit_timer("info_k40_ada", steps, prepare=old_pipeline),
           "ada now": A.fit_timer("info_k40_ada", steps)}
    med = A.alternated_medians(fns, repeats)
    base = med["none"][0]
    return [{"variant": k, "images_per_s": round(m, 1), "vs_none": round(m / base, 3),
             "runs": [round(r, 1) for r in runs]} for k, (m, runs) in med.items()]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", default=BEFORE, help="git revision to compare against")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    from tfgan_app import augment as now

    before = _module_at(args.before)
    ops = op_times({"before": before, "now": now}, args.repeats)
    print(table(ops, ["images", "policy", "version", "us_per_call", "vs_before"]), flush=True)
    fits = fit_throughput(before, args.repeats)
    print(table(fits, ["variant", "images_per_s", "vs_none"]), flush=True)
    payload = {"machine": machine(), "before": args.before, "repeats": args.repeats,
               "load_average": os.getloadavg(), "op": ops, "fit": fits}
    write(NAME, payload)
    md = [f"# Augmentation speed: now against {args.before}\n",
          f"{payload['machine']['cpu']}, {payload['machine']['date']}, medians of "
          f"{args.repeats} alternated in one process, load average "
          f"{payload['load_average'][0]:.2f} at the end.\n",
          "## op: augment forward + backward, batch 64, p = 0.1 (microseconds a call)\n",
          table(ops, ["images", "policy", "version", "us_per_call", "vs_before", "runs"]), "",
          "## fit: the default preset with the 40-value code, images/s\n",
          table(fits, ["variant", "images_per_s", "vs_none", "runs"]), ""]
    with open(os.path.join(RESULTS, f"{NAME}.md"), "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()
