"""Training steps per second of the d2l-gaussian preset (batch 8), GANModel.fit.

Usage: python benchmarks/toy_throughput.py [--epochs 40] [--repeats 3]

One step = one discriminator update and one generator update (d_steps=1) on a batch of 8.
The first epoch (tracing and XLA compilation) is excluded; the figure is the median over
``--repeats`` timed ``fit`` calls of ``--epochs`` epochs each. Rows: the preset's defaults
(XLA, steps_per_execution=125, i.e. one compiled call per epoch) and, for comparison in the same
run, the plain Keras defaults (no XLA, one step per call) and each change alone.
Writes benchmarks/results/toy_throughput.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import table, write  # noqa: E402


def measure(jit, spe, epochs, repeats):
    import keras

    from tfgan_app import train

    settings = train.resolve_settings("d2l-gaussian", overrides=[
        f"jit_compile={'true' if jit else 'false'}", f"steps_per_execution={spe}"])
    keras.utils.set_random_seed(0)
    ds, info = train.make_dataset(settings)
    gan = train.build_gan(settings, info)
    steps_per_epoch = info["num_examples"] // settings["batch_size"]
    gan.fit(ds, epochs=1, verbose=0, shuffle=False)  # trace + compile
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gan.fit(ds, epochs=epochs, verbose=0, shuffle=False)
        rates.append(epochs * steps_per_epoch / (time.perf_counter() - t0))
    return statistics.median(rates), rates


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    rows = []
    for label, jit, spe in [("preset defaults (XLA, steps_per_execution=125)", True, 125),
                            ("XLA, steps_per_execution=1", True, 1),
                            ("no XLA, steps_per_execution=125", False, 125),
                            ("Keras defaults (no XLA, steps_per_execution=1)", False, 1)]:
        median, rates = measure(jit, spe, args.epochs, args.repeats)
        rows.append({"configuration": label, "jit_compile": jit, "steps_per_execution": spe,
                     "steps_per_s": median, "runs": [round(r, 1) for r in rates]})
        print(f"{label}: {median:.0f} steps/s", flush=True)
    print()
    print(table(rows, ["configuration", "steps_per_s", "runs"]))
    path = write("toy_throughput", {"preset": "d2l-gaussian", "batch_size": 8,
                                    "epochs_timed": args.epochs, "rows": rows,
                                    "target_steps_per_s": 3000})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
