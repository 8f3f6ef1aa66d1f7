"""Are the offline default's digits recognisable? digits-dcgan and digits-cgan, measured.

Usage: python benchmarks/digits_quality.py [--presets digits-dcgan,digits-cgan] [--seed 0]

For each preset: train it exactly as ``tfgan-app train --preset NAME`` does (wall-clock time
reported; the target for the default preset is under 10 minutes on 2 CPU cores), then judge
1,000 generated samples with the offline digits classifier (trained on the real training
digits, accuracy on the held-out digits reported; must be > 95%):

* unconditional (digits-dcgan): the fraction of samples the classifier labels with confidence
  >= 0.9 (``tfgan_app.evaluation.coverage.CONFIDENT``), divided by the same fraction for real
  held-out digits (target >= 0.85), and the share of each class among the samples (target:
  every class >= 5%);
* conditional (digits-cgan): the fraction of samples whose predicted label equals the requested
  one, 100 per class (target >= 85%).

Writes benchmarks/results/digits_quality.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import table, write  # noqa: E402

from tfgan_app.evaluation.coverage import CONFIDENT, confident_rate  # noqa: E402


def judge(gan, clf, real_confident_rate, n=1000, seed=0):
    import numpy as np

    from tfgan_app.evaluation import classify

    if gan.num_classes:
        requested = np.arange(n) % gan.num_classes
        labels, conf = classify(gan.generate(n, labels=requested, seed=seed), clf)
        return {"label_agreement": float((labels == requested).mean()),
                "confident_rate": confident_rate(conf)}
    labels, conf = classify(gan.generate(n, seed=seed), clf)
    rate = confident_rate(conf)
    shares = np.bincount(labels, minlength=10) / n
    return {"confident_rate": rate, "ratio_to_real": rate / real_confident_rate,
            "class_shares": [round(float(s), 4) for s in shares],
            "min_class_share": float(shares.min())}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="digits-dcgan,digits-cgan")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    args = p.parse_args(argv)

    from tfgan_app import data, train
    from tfgan_app.evaluation import classifier_info, classify, digits_classifier

    clf = digits_classifier()
    x_test, y_test = data.load_digits_arrays("test")
    labels, conf = classify(x_test, clf)
    accuracy = float((labels == y_test).mean())
    real_rate = confident_rate(conf)
    print(f"digits classifier: held-out accuracy {accuracy:.4f} ({len(y_test)} digits); "
          f"real held-out digits with confidence >= {CONFIDENT}: {real_rate:.4f}", flush=True)
    rows = []
    for preset in args.presets.split(","):
        settings = train.resolve_settings(preset, seed=args.seed, overrides=args.overrides)
        with tempfile.TemporaryDirectory() as out:
            t0 = time.time()
            result = train.train(settings, out, verbose=0)
            seconds = time.time() - t0
        row = {"preset": preset, "epochs": settings["epochs"], "train_seconds": round(seconds, 1),
               **judge(result["gan"], clf, real_rate)}
        rows.append(row)
        print(row, flush=True)
    print()
    print(table(rows, ["preset", "epochs", "train_seconds", "confident_rate", "ratio_to_real",
                       "min_class_share", "label_agreement"]))
    path = write("digits_quality", {"classifier_accuracy": accuracy,
                                    "classifier": classifier_info(clf),
                                    "real_confident_rate": real_rate, "rows": rows,
                                    "seed": args.seed, "overrides": args.overrides})
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
