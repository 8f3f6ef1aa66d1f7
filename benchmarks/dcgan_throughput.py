"""Images per second: GANModel.fit against a hand-written tf.function loop, same DCGAN.

Usage: python benchmarks/dcgan_throughput.py [--steps 60] [--repeats 5] [--batch-size 256]

Model: the TensorFlow DCGAN tutorial's 28x28 layer sizes (``variant="tutorial"``), batch 256,
Adam(1e-4) for both networks, TF-GAN's non-saturating pair (``modified``, label smoothing 0).
Data: the real MNIST test set from ``../shared/data/mnist`` (IDX) through
``tfgan_app.data.from_idx`` (falls back to random images when the folder is absent).

Rows, all in the same process:

* ``GANModel.fit`` -- the product (Algorithm 1, k = 1: D update, then G update with fresh
  noise), ``steps_per_execution=1`` and ``jit_compile=False`` like the hand loop's plain
  ``tf.function`` (``--jit-compile auto`` resolves to XLA, which on this 2-core CPU is slower
  for this conv model: measured 375 against 450 images/s);
* ``hand loop (same algorithm)`` -- a ``tf.function`` that does exactly the same two updates
  (the fair comparison: the target is GANModel >= 0.95x this);
* ``hand loop (tutorial, simultaneous)`` -- the tutorial's single forward pass with two tapes
  (D and G updated from the same generated batch; less work, a different algorithm), for
  information;
* ``input pipeline alone`` -- iterating the tf.data pipeline (target >= 20x training).

Each timing is the median of ``--repeats`` runs of ``--steps`` steps after a warm-up; the
three training rows run interleaved (fit, hand, tutorial, fit, hand, ...), so a slow spell of
the machine does not land on one row only (the first version timed the rows one after the
other and saw 0.83x in one run and 1.03x in another).
Writes benchmarks/results/dcgan_throughput.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import MNIST_IMAGES, table, write  # noqa: E402



def dataset(batch):
    import numpy as np

    from tfgan_app import data

    images = MNIST_IMAGES
    if os.path.exists(images):
        return data.from_idx(images, batch_size=batch, seed=0), "MNIST t10k (IDX)"
    x = np.random.default_rng(0).uniform(-1, 1, (10_000, 28, 28, 1)).astype("float32")
    return data.from_arrays(x, batch_size=batch, seed=0), "random images (MNIST absent)"


def models(latent_dim):
    import keras

    from tfgan_app import builders

    keras.utils.set_random_seed(0)
    g = builders.dcgan_generator(latent_dim, (28, 28, 1), variant="tutorial")
    d = builders.dcgan_discriminator((28, 28, 1), variant="tutorial")
    return g, d


def timed(fns, steps, repeats):
    """Rates (steps/s) of each ``fns[name](steps)``: one warm-up call each, then ``repeats``
    rounds that run every function once in turn (interleaved, so a slow spell of the machine
    hits every row alike instead of whichever happened to be running). Returns
    ``{name: (median, [rates])}``."""
    for fn in fns.values():
        fn(3)  # warm-up: tracing/compilation
    rates = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(steps)
            rates[name].append(steps / (time.perf_counter() - t0))
    return {name: (statistics.median(r), r) for name, r in rates.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--latent-dim", type=int, default=100)
    p.add_argument("--jit-compile", default="false", choices=["auto", "true", "false"],
                   help="GANModel.compile's jit_compile (default false, like the hand loop's "
                        "plain tf.function)")
    args = p.parse_args(argv)

    import keras
    import tensorflow as tf

    import tfgan_app as tg

    batch, latent = args.batch_size, args.latent_dim
    ds, source = dataset(batch)
    ds = ds.repeat()
    loss = tg.losses.get("modified", label_smoothing=0.0)
    rows = []

    # --- GANModel.fit
    g, d = models(latent)
    gan = tg.GANModel(g, d, latent_dim=latent, seed=0)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    gan.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4), loss=loss,
                jit_compile=jit)

    def run_fit(steps):
        gan.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)

    # --- hand-written loops on fresh copies of the same models
    def hand(simultaneous):
        g, d = models(latent)
        d_opt, g_opt = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)
        d_opt.build(d.trainable_variables)
        g_opt.build(g.trainable_variables)

        @tf.function
        def sequential_step(real):
            z = tf.random.normal([batch, latent])
            fake = g(z, training=True)
            with tf.GradientTape() as tape:
                d_loss = loss.discriminator_loss(d(real, training=True), d(fake, training=True))
            d_opt.apply(tape.gradient(d_loss, d.trainable_variables), d.trainable_variables)
            z = tf.random.normal([batch, latent])
            with tf.GradientTape() as tape:
                d_fake = d(g(z, training=True), training=True)
                g_loss = loss.generator_loss(None, d_fake)
            g_opt.apply(tape.gradient(g_loss, g.trainable_variables), g.trainable_variables)
            return d_loss, g_loss

        @tf.function
        def simultaneous_step(real):
            z = tf.random.normal([batch, latent])
            with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
                fake = g(z, training=True)
                d_real, d_fake = d(real, training=True), d(fake, training=True)
                g_loss = loss.generator_loss(d_real, d_fake)
                d_loss = loss.discriminator_loss(d_real, d_fake)
            g_opt.apply(g_tape.gradient(g_loss, g.trainable_variables), g.trainable_variables)
            d_opt.apply(d_tape.gradient(d_loss, d.trainable_variables), d.trainable_variables)
            return d_loss, g_loss

        step = simultaneous_step if simultaneous else sequential_step
        it = iter(ds)

        def run(steps):
            for _ in range(steps):
                out = step(next(it))
            float(out[0])  # wait for the last step

        return run

    # --- the input pipeline alone
    def run_pipeline(steps):
        for i, _ in enumerate(ds):
            if i + 1 >= steps:
                break

    res = timed({"fit": run_fit, "hand": hand(False), "sim": hand(True)}, args.steps,
                args.repeats)
    (fit_rate, fit_runs), (hand_rate, hand_runs), (sim_rate, sim_runs) = (
        res["fit"], res["hand"], res["sim"])
    pipe_rate, pipe_runs = timed({"pipe": run_pipeline}, args.steps * 20, args.repeats)["pipe"]

    for label, rate, runs in [("GANModel.fit", fit_rate, fit_runs),
                              ("hand loop (same algorithm)", hand_rate, hand_runs),
                              ("hand loop (tutorial, simultaneous)", sim_rate, sim_runs),
                              ("input pipeline alone", pipe_rate, pipe_runs)]:
        rows.append({"what": label, "images_per_s": rate * batch,
                     "runs_images_per_s": [round(r * batch, 1) for r in runs]})
    rows[0]["ratio_vs_hand_loop"] = fit_rate / hand_rate
    rows[3]["ratio_vs_fit"] = pipe_rate / fit_rate
    print(f"data: {source}; batch {batch}; {args.steps} steps x {args.repeats} repeats; "
          f"GANModel jit_compile={args.jit_compile} (resolved: {gan.jit_compile})\n")
    print(table(rows, ["what", "images_per_s", "ratio_vs_hand_loop", "ratio_vs_fit"]))
    print(f"\nGANModel.fit / hand loop (same algorithm): {fit_rate / hand_rate:.3f}x "
          f"(target >= 0.95)")
    print(f"input pipeline / GANModel.fit: {pipe_rate / fit_rate:.1f}x (target >= 20)")
    path = write("dcgan_throughput", {"data": source, "jit_compile": args.jit_compile,
                                      "jit_compile_resolved": bool(gan.jit_compile), "batch_size": batch,
                                      "steps": args.steps, "repeats": args.repeats,
                                      "rows": rows,
                                      "fit_over_hand_loop": fit_rate / hand_rate,
                                      "pipeline_over_fit": pipe_rate / fit_rate})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
