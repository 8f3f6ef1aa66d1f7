"""The original GAN paper's vanishing-gradient argument, measured.

Usage: python benchmarks/vanishing_gradients.py [--d-steps 2000] [--batch-size 128]

A generator is fixed (a DCGAN generator for the 8x8 digits, at initialisation); a fresh
discriminator is trained against it towards optimality with each loss pair's own
discriminator objective, and at checkpoints we measure the norm of the generator's gradient
``||d L_G / d theta_G||`` (mean over 4 batches of noise) under

* ``minimax`` -- G minimises ``log(1 - D(G(z)))`` (saturating: as D wins, D(G(z)) -> 0 and the
  gradient vanishes, Goodfellow et al. 2014 sec. 3, Arjovsky & Bottou 2017 thm. 2.4);
* ``modified`` -- G minimises ``-log D(G(z))`` (non-saturating: the gradient does not vanish);
* ``wasserstein`` -- a WGAN-GP critic (gradient penalty 10) and G minimising ``-D(G(z))``.

The discriminators are the DCGAN discriminator with layer norm (no batch norm, so the gradient
penalty is well defined), Adam(2e-4, beta_1=0.5), no label smoothing. Writes
benchmarks/results/vanishing_gradients.json and .png (log-scale gradient norm against D steps).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RESULTS, table, write  # noqa: E402

LOSSES = [("minimax", {"label_smoothing": 0.0}, 0.0),
          ("modified", {"label_smoothing": 0.0}, 0.0),
          ("wasserstein", {}, 10.0)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d-steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--latent-dim", type=int, default=32)
    args = p.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    import tfgan_app as tg

    checkpoints = sorted({0, 10, 30, 100, 300, 1000, args.d_steps} - {s for s in (
        1000, 300) if s > args.d_steps})
    x, _ = tg.data.load_digits_arrays("train")
    ds = tg.data.from_arrays(x, batch_size=args.batch_size, seed=0).repeat()
    batch = tf.constant(x[:args.batch_size])
    results = {}
    for name, options, gp in LOSSES:
        keras.utils.set_random_seed(0)  # the same fixed generator for every loss
        gen = tg.builders.dcgan_generator(args.latent_dim, (8, 8, 1), base_filters=32)
        disc = tg.builders.dcgan_discriminator((8, 8, 1), base_filters=32, norm="layer")
        gan = tg.GANModel(gen, disc, latent_dim=args.latent_dim, seed=0)
        gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                    g_optimizer=keras.optimizers.SGD(0.0),  # G stays fixed
                    loss=name, loss_options=options, gradient_penalty=gp)

        def grad_norm():
            norms, d_fake = [], []
            for _ in range(4):
                with tf.GradientTape() as tape:
                    loss = gan.generator_loss(batch, None, training=False)
                grads = tape.gradient(loss, gen.trainable_variables)
                norms.append(float(tf.linalg.global_norm(grads)))
                fake = gan.generate(args.batch_size, seed=len(norms), use_ema=False)
                d_fake.append(float(tf.reduce_mean(tf.sigmoid(disc(fake, training=False)))))
            return float(np.mean(norms)), float(np.mean(d_fake))

        rows, done = [], 0
        for step in checkpoints:
            if step > done:
                gan.fit(ds, steps_per_epoch=step - done, epochs=1, verbose=0)
                done = step
            norm, d_fake = grad_norm()
            rows.append({"d_steps": step, "g_grad_norm": norm, "sigmoid_D_fake": d_fake})
            print(f"{name:12s} D steps {step:5d}: ||grad G|| = {norm:.3e}  "
                  f"sigmoid(D(G(z))) = {d_fake:.3e}", flush=True)
        results[name] = rows

    table_rows = []
    for i, step in enumerate(checkpoints):
        row = {"D steps": step}
        for name, _, _ in LOSSES:
            row[f"{name} ||grad||"] = results[name][i]["g_grad_norm"]
        row["minimax sigmoid(D(G(z)))"] = results["minimax"][i]["sigmoid_D_fake"]
        table_rows.append(row)
    cols = list(table_rows[0])
    print()
    print(table(table_rows, cols))
    # As D improves the norms first grow (D's logits gain scale); the question is what happens
    # once D is near-optimal: the final norm relative to the largest one seen.
    ratio = {n: results[n][-1]["g_grad_norm"] / max(r["g_grad_norm"] for r in results[n])
             for n, _, _ in LOSSES}
    print("\nfinal / peak generator gradient norm (1 = not vanishing):",
          ", ".join(f"{n} {r:.3g}" for n, r in ratio.items()))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, _, _ in LOSSES:
        steps = [max(r["d_steps"], 1) for r in results[name]]
        ax.plot(steps, [r["g_grad_norm"] for r in results[name]], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("discriminator steps against a fixed generator (0 plotted at 1)")
    ax.set_ylabel("generator gradient norm")
    ax.set_title("Vanishing gradients: minimax vs non-saturating vs Wasserstein")
    ax.legend()
    os.makedirs(RESULTS, exist_ok=True)
    png = os.path.join(RESULTS, "vanishing_gradients.png")
    fig.savefig(png, dpi=100, bbox_inches="tight")
    path = write("vanishing_gradients", {"checkpoints": checkpoints, "results": results,
                                         "final_over_peak": ratio,
                                         "batch_size": args.batch_size})
    print(f"wrote {path} and {png}")


if __name__ == "__main__":
    main()
