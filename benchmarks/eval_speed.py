"""Evaluation speed: seconds for FID and KID on 10,000 samples of 28x28 images with the offline
extractor.

Setup (documented so that numbers can be compared):

* Images: MNIST's 10,000 ``t10k`` test images from IDX files (``--mnist-dir``, default
  ``../shared/data/mnist`` next to the repository, or ``$TFGAN_APP_MNIST_DIR``). Without them
  the script falls back to scikit-learn's digits upscaled bilinearly to 28x28 (repeated to
  10,000) and says so in the output.
* Extractor: the offline MNIST classifier (:func:`tfgan_app.evaluation.dataset_classifier`),
  trained on the first 5,000 test images and tested on the last 5,000 (cached on disk; the
  training time is reported separately and excluded from the metric timings). Features: its
  128-D ``features`` layer; logits: 10-D.
* "Generated" samples: a stand-in sampler (real images rolled by up to 2 pixels plus Gaussian
  noise of std 0.2, clipped), drawn through ``FeatureExtractor.from_sampler`` -- one
  ``sampler(n, seed)`` call, as a generator's sample set is drawn, then features extracted in
  batches of 500: the path a real generator uses. A generator's own forward pass is not
  included.
* Timings: wall-clock seconds, median of ``--repeats`` runs; "total" = feature extraction of
  both sets + the metric itself.

Usage: ``python benchmarks/eval_speed.py [--num-samples 10000] [--repeats 3]``. Prints a table
and writes ``benchmarks/results/eval_speed.json``.

``--fid-sqrt-dim D`` instead compares FID's two matrix square roots on ``--num-samples``
Gaussian features of dimension ``D`` (2048: Inception's pool features): TF-GAN's
``frechet_classifier_distance_from_activations`` (two SVDs) against
:func:`tfgan_app.evaluation.frechet_distance` (eigendecompositions), seconds and values, and
writes ``benchmarks/results/fid_sqrt.json``. Run it on a machine nobody else is using: the
figures mean nothing on a shared one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import _common  # noqa: E402

import tfgan_app.evaluation as E  # noqa: E402


def _timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _real_images(mnist_dir, n):
    if mnist_dir and os.path.isfile(os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz")):
        real = E.real_images({"name": "mnist", "idx_dir": mnist_dir})
        x = np.concatenate([real.reference, real.heldout])
        return real, x[:n], f"MNIST t10k IDX ({mnist_dir})"
    import tensorflow as tf

    xd, yd = E.load_digits_images("all")
    up = tf.image.resize(xd, (28, 28), method="bilinear").numpy().clip(-1, 1)
    reps = int(np.ceil(2 * n / len(up)))
    x, y = np.concatenate([up] * reps), np.concatenate([yd] * reps)
    real = E.RealImages("digits28", x[:n // 2], y[:n // 2], x[n // 2:n], y[n // 2:n], 10,
                        "digits upscaled to 28x28 (MNIST IDX not found)")
    return real, x[:n], "scikit-learn digits upscaled to 28x28 (fallback)"


def _fid_sqrt(n, dim, repeats, out):
    import tensorflow as tf

    from tfgan_app import _tfgan

    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, dim))
    b = a @ (np.eye(dim) + 0.1 * rng.normal(size=(dim, dim)) / np.sqrt(dim)) + 0.05
    tfgan = _tfgan.classifier_metrics().frechet_classifier_distance_from_activations
    t_tfgan, v_tfgan = _timed(lambda: float(tfgan(tf.constant(a), tf.constant(b)).numpy()), repeats)
    t_ours, v_ours = _timed(lambda: E.frechet_distance(a, b), repeats)
    print(f"FID square roots, {n} x {dim} Gaussian features; median of {repeats}")
    print("| square root | seconds | FID |\n| --- | --- | --- |")
    print(f"| TF-GAN (SVD) | {t_tfgan:.2f} | {v_tfgan:.10g} |")
    print(f"| eigendecomposition (tfgan_app) | {t_ours:.2f} | {v_ours:.10g} |")
    result = {"num_samples": n, "dim": dim, "repeats": repeats,
              "seconds": {"tfgan_svd": t_tfgan, "eigh": t_ours},
              "fid": {"tfgan_svd": v_tfgan, "eigh": v_ours},
              "relative_difference": abs(v_tfgan - v_ours) / v_tfgan,
              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                          "cpu": _common.cpu_name(), "tensorflow": tf.__version__,
                          "numpy": np.__version__}}
    _write_json(result, out)
    return result


def _write_json(result, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    os.replace(tmp, path)
    print(f"wrote {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--num-samples", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--mnist-dir", default=os.environ.get("TFGAN_APP_MNIST_DIR") or os.path.normpath(
        _common.MNIST_DIR))
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--fid-sqrt-dim", type=int, default=None,
                    help="compare FID's two matrix square roots at this feature dimension only")
    args = ap.parse_args(argv)
    n = args.num_samples
    if args.fid_sqrt_dim:
        return _fid_sqrt(n, args.fid_sqrt_dim, args.repeats,
                         args.out or os.path.join(HERE, "results", "fid_sqrt.json"))
    args.out = args.out or os.path.join(HERE, "results", "eval_speed.json")

    real, x_real, source = _real_images(args.mnist_dir, n)
    t = time.perf_counter()
    model, info = E.dataset_classifier(real, cache_dir=args.cache_dir)
    clf_seconds = time.perf_counter() - t
    ext = E.classifier_extractor(model, info)

    def sampler(b, seed):
        rng = np.random.default_rng(seed)
        x = x_real[rng.integers(0, len(x_real), b)]
        x = np.roll(x, shift=tuple(rng.integers(-2, 3, 2)), axis=(1, 2))
        return np.clip(x + rng.normal(0, 0.2, x.shape), -1, 1).astype(np.float32)

    ext(x_real[:args.batch_size], batch_size=args.batch_size)  # warm-up (tf.function trace)
    t_real, a_real = _timed(lambda: ext(x_real, batch_size=args.batch_size), args.repeats)
    t_fake, a_fake = _timed(lambda: ext.from_sampler(sampler, n, batch_size=args.batch_size,
                                                     seed=0), args.repeats)
    t_fid, fid = _timed(lambda: E.frechet_distance(a_real.features, a_fake.features),
                        args.repeats)
    t_kid, kid = _timed(lambda: E.kernel_distance(a_real.features, a_fake.features),
                        args.repeats)
    t_is, isc = _timed(lambda: E.classifier_score(a_fake.logits), args.repeats)
    t_prdc, prdc = _timed(lambda: E.prdc(a_real.features, a_fake.features), 1)

    extract = t_real + t_fake
    rows = [
        ("offline classifier (train or load)", clf_seconds,
         f"test acc {info['test_accuracy']:.4f}"),
        (f"extract real ({n})", t_real, f"{n / t_real:.0f} img/s"),
        (f"extract generated, streaming ({n})", t_fake, f"{n / t_fake:.0f} img/s"),
        ("FID from activations", t_fid, f"fid = {fid:.4g}"),
        ("KID from activations (10 subsets)", t_kid,
         f"kid = {kid['kid']:.4g} +- {kid['kid_std']:.2g}"),
        ("FID total (extract both + FID)", extract + t_fid, ""),
        ("KID total (extract both + KID)", extract + t_kid, ""),
        ("IS from logits (10 splits)", t_is, f"is = {isc['is']:.4g}"),
        ("precision/recall + density/coverage", t_prdc,
         f"P={prdc['precision']:.3f} R={prdc['recall']:.3f}"),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"Evaluation speed, {n} samples of 28x28x1, features {a_real.features.shape[1]}-D "
          f"({source}); median of {args.repeats}")
    print(f"{'step'.ljust(w)}  seconds  note")
    print(f"{'-' * w}  -------  ----")
    for name, sec, note in rows:
        print(f"{name.ljust(w)}  {sec:7.3f}  {note}")

    import tensorflow as tf

    result = {
        "num_samples": n, "image_shape": [28, 28, 1], "source": source,
        "extractor": {k: info.get(k) for k in ("name", "test_accuracy", "num_train", "num_test",
                                               "epochs")},
        "feature_dim": int(a_real.features.shape[1]), "batch_size": args.batch_size,
        "repeats": args.repeats,
        "seconds": {"classifier_train_or_load": clf_seconds, "extract_real": t_real,
                    "extract_generated_streaming": t_fake, "fid_from_activations": t_fid,
                    "kid_from_activations": t_kid, "fid_total": extract + t_fid,
                    "kid_total": extract + t_kid, "is_from_logits": t_is, "prdc": t_prdc},
        "values": {"fid": fid, "kid": kid["kid"], "kid_std": kid["kid_std"], "is": isc["is"],
                   **prdc},
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "python": platform.python_version(), "tensorflow": tf.__version__,
                    "gpus": len(tf.config.list_physical_devices("GPU"))},
    }
    _write_json(result, args.out)
    return result


if __name__ == "__main__":
    main()
