"""CycleGAN (issue #19), measured: the ``digits-cyclegan`` recipe on held-out digits, and speed.

Usage:
  python benchmarks/cyclegan.py quality    [--seeds 0,1,2] [--set KEY=VALUE ...]
  python benchmarks/cyclegan.py throughput [--steps 40] [--repeats 5] [--quick]
  python benchmarks/cyclegan.py report     (the tables of what is recorded)

* ``quality`` trains the ``digits-cyclegan`` preset exactly as ``tfgan-app train --preset
  digits-cyclegan --seed S`` does (``train.resolve_settings`` + ``train.train``) and reads
  the run's ``report.json`` (:func:`tfgan_app.evaluation.cyclegan.cyclegan_report`): on the
  359 held-out digits of the ``test`` split (A) and their known translations
  ``unpaired.transform`` (B), which training never sees as pairs -- PSNR and L1 of ``G(a)``
  against ``T(a)`` beside the identity (``a`` itself) and histogram matching (``a``'s grey
  levels matched to training domain B's pooled histogram), the same for ``F(b)`` against
  ``a``; cycle PSNR of ``F(G(a))`` and ``G(F(b))``; label preservation: the digits CNN
  trained on domain B (A) labels ``G(a)`` (``F(b)``) as the digit's own label. Targets (issue
  #19): G(a) closer to T(a) than both baselines by PSNR and L1; cycle PSNR > 25 dB both ways;
  label preservation >= 90% both ways. Deterministic per seed on one machine, so they may be
  measured while the machine is busy; rows accumulate (a seed already recorded is not re-run).
* ``throughput`` -- images/s of ``CycleGAN.fit`` (the preset's networks, optimizers and
  ``jit_compile``) against a hand-written ``tf.function`` doing the same four-network update
  (G and F on the least-squares generator losses plus 10 x the cycle L1; both pools; D_A and
  D_B on the least-squares discriminator losses), in the same process, alternated, medians of
  ``--repeats`` (target >= 0.95x). A timing: record it on a quiet machine only; ``--quick``
  is a smoke run of a few steps that records nothing.

Writes ``benchmarks/results/cyclegan.json`` and a Markdown copy ``cyclegan.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import RESULTS, cpu_name, machine, table, write  # noqa: E402

NAME = "cyclegan"
PRESET = "digits-cyclegan"
TARGETS = {"cycle_psnr_db": 25.0, "labels": 0.90}
QUALITY_COLUMNS = ["seed", "G_psnr", "id_psnr", "hist_psnr", "G_psnr_margin", "G_l1",
                   "id_l1", "hist_l1", "G_l1_margin", "F_psnr", "F_psnr_margin",
                   "F_l1_margin", "cycle_psnr_a", "cycle_psnr_b", "labels_G", "labels_F",
                   "real_a", "real_b", "meets"]


def _load() -> dict:
    path = os.path.join(RESULTS, f"{NAME}.json")
    if not os.path.exists(path):
        return {"quality": []}
    with open(path) as f:
        return {"quality": [], **json.load(f)}


def _save(payload: dict) -> None:
    payload = {k: v for k, v in payload.items() if k != "machine"}
    write(NAME, payload)
    tmp = os.path.join(RESULTS, f"{NAME}.md.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(_markdown(payload) + "\n")
    os.replace(tmp, os.path.join(RESULTS, f"{NAME}.md"))


def _row(seed: int, report: dict, overrides) -> dict:
    ab, ba, cyc, lab = report["a_to_b"], report["b_to_a"], report["cycle"], report["labels"]
    row = {"seed": seed, "preset": PRESET, "overrides": list(overrides),
           "G_psnr": ab["model"]["psnr"], "id_psnr": ab["identity"]["psnr"],
           "hist_psnr": ab["histogram"]["psnr"], "G_psnr_margin": ab["psnr_margin"],
           "G_l1": ab["model"]["l1"], "id_l1": ab["identity"]["l1"],
           "hist_l1": ab["histogram"]["l1"], "G_l1_margin": ab["l1_margin"],
           "G_ssim": ab["model"]["ssim"],
           "F_psnr": ba["model"]["psnr"], "F_psnr_margin": ba["psnr_margin"],
           "F_l1": ba["model"]["l1"], "F_l1_margin": ba["l1_margin"],
           "cycle_psnr_a": cyc["psnr_a"], "cycle_psnr_b": cyc["psnr_b"],
           "labels_G": lab["g_of_a_as_a_label"], "labels_F": lab["f_of_b_as_b_label"],
           "real_a": lab["real_a"], "real_b": lab["real_b"], "heldout": report["heldout"]}
    row["meets"] = bool(
        min(row["G_psnr_margin"], row["G_l1_margin"]) > 0
        and min(row["cycle_psnr_a"], row["cycle_psnr_b"]) > TARGETS["cycle_psnr_db"]
        and min(row["labels_G"], row["labels_F"]) >= TARGETS["labels"])
    return row


def run_quality(seeds, overrides=()):
    from tfgan_app import train

    for seed in seeds:
        payload = _load()
        if any(r["seed"] == seed and r["overrides"] == list(overrides)
               for r in payload["quality"]):
            print(f"seed {seed}: recorded already")
            continue
        settings = train.resolve_settings(PRESET, seed=seed, overrides=list(overrides))
        with tempfile.TemporaryDirectory() as out:
            result = train.train(settings, out, verbose=0)
        row = _row(seed, result["report"], overrides)
        print(table([row], QUALITY_COLUMNS), flush=True)
        payload = _load()  # re-read: another part may have written meanwhile
        payload["quality"].append(row)
        payload["quality_settings"] = {k: settings[k] for k in (
            "dataset", "dataset_options", "batch_size", "epochs", "generator", "discriminator",
            "loss", "cyclegan", "d_lr", "g_lr", "beta_1", "beta_2", "lr_decay", "jit_compile")}
        payload["quality_cpu"] = cpu_name()
        _save(payload)


# ---------------------------------------------------------------------------- throughput

def _hand_step(gan, settings):
    """A plain ``tf.function`` of CycleGAN's update on ``gan``'s four networks and pools:
    least squares (TF-GAN's, written out), cycle weight 10, no identity term (the preset's),
    its own optimizers and seed counter."""
    import keras
    import tensorflow as tf

    G, F, DA, DB = gan.generator_ab, gan.generator_ba, gan.discriminator_a, gan.discriminator_b
    g_vars = G.trainable_variables + F.trainable_variables
    d_vars = DA.trainable_variables + DB.trainable_variables
    adam = lambda: keras.optimizers.Adam(float(settings["g_lr"]),  # noqa: E731
                                         beta_1=float(settings["beta_1"]),
                                         beta_2=float(settings["beta_2"]))
    g_opt, d_opt = adam(), adam()
    g_opt.build(g_vars)
    d_opt.build(d_vars)
    counter = tf.Variable(0, dtype=tf.int64)
    cycle_w = float(settings["cyclegan"]["cycle_weight"])

    def mse(x, target):
        return 0.5 * tf.reduce_mean(tf.square(x - target))

    @tf.function(jit_compile=bool(settings["jit_compile"]))
    def step(a, b):
        with tf.GradientTape() as tape:
            fake_b, fake_a = G(a, training=True), F(b, training=True)
            adv = mse(DB(fake_b, training=True), 1.0) + mse(DA(fake_a, training=True), 1.0)
            cyc = (tf.reduce_mean(tf.abs(a - F(fake_b, training=True)))
                   + tf.reduce_mean(tf.abs(b - G(fake_a, training=True)))) / 2
            g_loss = adv + cycle_w * cyc
        g_opt.apply(tape.gradient(g_loss, g_vars), g_vars)
        counter.assign_add(2)
        pooled_a = gan.pool_a.query(tf.stop_gradient(fake_a), tf.stack([counter, 0]))
        pooled_b = gan.pool_b.query(tf.stop_gradient(fake_b), tf.stack([counter, 1]))
        with tf.GradientTape() as tape:
            d_loss = (mse(DA(a, training=True), 1.0) + mse(DA(pooled_a, training=True), 0.0)
                      + mse(DB(b, training=True), 1.0) + mse(DB(pooled_b, training=True), 0.0))
        d_opt.apply(tape.gradient(d_loss, d_vars), d_vars)
        return g_loss, d_loss

    return step


def run_throughput(steps, repeats, quick):
    from tfgan_app import train

    settings = train.resolve_settings(PRESET, seed=0)
    if settings["cyclegan"].get("identity_weight", 0.5) != 0:
        raise SystemExit("the hand loop has no identity term; the preset must have none")
    ds, info = train.make_dataset(settings)
    ds = ds.repeat()
    batch = int(settings["batch_size"])
    fit_gan = train.build_gan(settings, info)
    hand = _hand_step(train.build_gan(settings, info), settings)  # a twin: its own weights
    it = iter(ds)

    def run_fit(n):
        fit_gan.fit(ds, steps_per_epoch=n, epochs=1, verbose=0)

    def run_hand(n):
        for _ in range(n):
            out = hand(*next(it))
        float(out[0])

    runners = (("CycleGAN.fit (digits-cyclegan)", run_fit),
               ("hand-written tf.function, same update", run_hand))
    for _, fn in runners:
        fn(2)  # warm-up: tracing and XLA compilation
    rates = {what: [] for what, _ in runners}
    for _ in range(repeats):  # alternated: a slow spell hits both alike
        for what, fn in runners:
            t0 = time.perf_counter()
            fn(steps)
            rates[what].append(steps * batch / (time.perf_counter() - t0))
    med = {what: statistics.median(r) for what, r in rates.items()}
    fit, hand_rate = med[runners[0][0]], med[runners[1][0]]
    rows = [{"what": what, "images_per_s": med[what], "runs": [round(x, 1) for x in r]}
            for what, r in rates.items()]
    rows[0]["ratio"] = fit / hand_rate
    print(table(rows, ["what", "images_per_s", "ratio"]))
    print(f"\nfit / hand loop: {fit / hand_rate:.3f}x (target >= 0.95); CPU: {cpu_name()}")
    result = {"rows": rows, "fit_over_hand": fit / hand_rate, "steps": steps,
              "repeats": repeats, "batch_size": batch, "cpu": cpu_name(),
              "date": machine()["date"],
              "note": f"batch {batch}, {steps} steps x {repeats} alternated repeats, medians; "
                      f"CPU {cpu_name()}"}
    if quick:
        print("(--quick: smoke run, not recorded; written to",
              write(NAME, {"throughput": result}, quick=True) + ")")
        return
    payload = _load()
    payload["throughput"] = result
    _save(payload)


# ---------------------------------------------------------------------------- report

def _markdown(payload: dict) -> str:
    out = ["# CycleGAN benchmark (issue #19)\n",
           f"Quality: `{PRESET}` trained as `tfgan-app train --preset {PRESET} --seed S`, "
           "judged on the 359 held-out test digits and their known translations (never seen "
           "as pairs). PSNR in dB (images in [0, 1]), L1 in [-1, 1] units; margins = model "
           "minus the better baseline (PSNR) / better baseline minus model (L1); labels = "
           "share of G(a) (F(b)) the CNN trained on domain B (A) labels as the digit; real_a/"
           "real_b = those CNNs on the real held-out images. Targets: margins > 0, cycle PSNR "
           "> 25 dB, labels >= 0.90."]
    if payload.get("quality"):
        out.append(f"CPU: {payload.get('quality_cpu', '?')}\n")
        out.append(table(payload["quality"], QUALITY_COLUMNS))
    th = payload.get("throughput")
    if th:
        out.append(f"\nThroughput ({th['note']}):\n")
        out.append(table(th["rows"], ["what", "images_per_s", "ratio"]))
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["quality", "throughput", "report"])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=None, help="throughput: steps per timed run "
                   "(default 40; 3 with --quick)")
    p.add_argument("--repeats", type=int, default=None, help="throughput: alternated repeats "
                   "(default 5; 2 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="throughput smoke run (3 steps x 2 repeats unless given): nothing "
                        "recorded")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   help="KEY=VALUE on top of the preset (recorded in each row)")
    args = p.parse_args(argv)
    if args.part == "quality":
        run_quality([int(s) for s in args.seeds.split(",")], args.overrides)
    elif args.part == "throughput":
        steps = args.steps or (3 if args.quick else 40)
        repeats = args.repeats or (2 if args.quick else 5)
        run_throughput(steps, repeats, args.quick)
        return
    print(_markdown(_load()))


if __name__ == "__main__":
    main()
