"""Evaluate a generator against real data: :class:`Evaluator`, :func:`evaluate_run`,
:func:`format_table`.

Two kinds of data:

* **images** (``config["data"]["name"]`` a registered real-image source, e.g. ``"digits"``,
  ``"mnist"``): features from the offline dataset classifier (or a given extractor), then
  ``fid``, ``kid``, ``is``, ``precision_recall``, ``density_coverage``, ``class_coverage``
  (default set) and, on request, ``parzen`` and ``swd``.
* **points** (a toy 2-D spec: ``"modes"`` + ``"std"``, or the d2l ``"gaussian"``):
  ``mode_coverage`` (mixtures only) and ``frechet`` (Fréchet distance of the raw points, by
  TF-GAN's function) by default; ``kid``, ``precision_recall``, ``density_coverage`` on request.

Every metric is also computed for **real held-out data against the same reference** -- the
*floor*: what a perfect generator would score at that sample size (FID and KID are biased or
noisy at small N; precision/recall/coverage are not 1 for two finite samples of one law).

Sample sizes (defaults): images -- as many generated samples as held-out images (899 for
digits), so the floor and the model score are computed at equal N; Parzen -- 10,000 generated
samples (the paper's protocol), sigma chosen on the first half of the held-out set, reported on
the second half. Points -- 2,500 generated samples (VEEGAN), reference = 2,500 exact samples
(seed 1), held-out = exact samples (seed 2).
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from tfgan_app.utils import write_json
from tfgan_app.evaluation import coverage as _cov
from tfgan_app.evaluation import datasets as _ds
from tfgan_app.evaluation import extractors as _ex
from tfgan_app.evaluation import metrics as _m
from tfgan_app.evaluation import parzen as _pz

__all__ = [
    "IMAGE_METRICS",
    "DEFAULT_IMAGE_METRICS",
    "POINT_METRICS",
    "DEFAULT_POINT_METRICS",
    "Evaluator",
    "default_metrics",
    "evaluate_run",
    "format_table",
    "sample_toy_points",
]

IMAGE_METRICS = ("fid", "kid", "is", "precision_recall", "density_coverage", "class_coverage",
                 "parzen", "swd")
DEFAULT_IMAGE_METRICS = ("fid", "kid", "is", "precision_recall", "density_coverage",
                         "class_coverage")
POINT_METRICS = ("mode_coverage", "frechet", "kid", "precision_recall", "density_coverage")
DEFAULT_POINT_METRICS = ("mode_coverage", "frechet")
PARZEN_NUM_SAMPLES = 10_000
_LOGIT_METRICS = ("is", "class_coverage")


def _point_spec(data):
    """The toy spec inside a data config (``data["spec"]`` as written by ``tfgan-app train``,
    or the config itself when it is a spec), or ``None`` for non-toy data."""
    from tfgan_app.data.toy import TOY_DISTRIBUTIONS

    if not isinstance(data, dict):
        return None
    if isinstance(data.get("spec"), dict) and _point_spec(data["spec"]) is not None:
        return data["spec"]
    if ("modes" in data and "std" in data) or ("mean" in data and "covariance" in data) \
            or data.get("name") in TOY_DISTRIBUTIONS:
        return data
    return None


def _is_point_spec(data) -> bool:
    return _point_spec(data) is not None


def default_metrics(data) -> tuple:
    """The default metric names for a data config (``config["data"]``) or dataset name."""
    if _is_point_spec(data):
        try:
            _cov.toy_modes(_point_spec(data))
            return DEFAULT_POINT_METRICS
        except ValueError:
            return ("frechet",)
    return DEFAULT_IMAGE_METRICS


def sample_toy_points(spec: dict, n: int, seed: int) -> np.ndarray:
    """Exact samples of a toy spec: ``float32 [n, 2]``.

    Mixtures (``modes`` + ``std``, or name ``ring``/``grid``): equal-weight isotropic Gaussians;
    the d2l Gaussian (``mean`` + ``covariance``, or name ``gaussian``): ``N(mean, covariance)``.
    """
    from tfgan_app.data.toy import gaussian

    spec = _point_spec(spec)
    if spec is None:
        raise ValueError("spec is not a toy 2-D distribution spec")
    rng = np.random.default_rng(seed)
    if "mean" in spec and "covariance" in spec:
        return rng.multivariate_normal(spec["mean"], spec["covariance"], size=n).astype(
            np.float32)
    if spec.get("name") == "gaussian" and "modes" not in spec:
        return gaussian(n, seed=seed)[0]
    modes, std = _cov.toy_modes(spec)
    idx = rng.integers(0, len(modes), size=n)
    return (modes[idx] + rng.normal(0.0, std, size=(n, modes.shape[1]))).astype(np.float32)


def _finite_or_none(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class Evaluator:
    """Holds the real reference (and its activations) and evaluates samplers against it.

    Args:
      real: what to compare with --
        a :class:`~tfgan_app.evaluation.datasets.RealImages`; a dataset name or data config
        (``{"name": "digits"}``) for a registered source; a toy spec dict (points); or an array
        of real images ``float [N, H, W, C]`` in ``[-1, 1]`` (reference only: no floor, no
        Parzen).
      metrics: metric names (see :data:`IMAGE_METRICS` / :data:`POINT_METRICS`); ``None`` for
        the default set. Unknown names raise ``ValueError``.
      extractor: a :class:`~tfgan_app.evaluation.extractors.FeatureExtractor` or a
        ``keras.Model`` (wrapped with :func:`keras_extractor`); default: the offline classifier
        trained on the dataset's reference images.
      num_samples: generated samples per evaluation (default: size of the held-out set; 2,500
        for points; 1,000 for a bare image array).
      parzen_samples: generated samples for Parzen (default 10,000).
      cache_dir: classifier cache folder. batch_size: images per extractor batch.
      seed: default sampling seed.
    """

    def __init__(self, real, metrics=None, extractor=None, num_samples: int | None = None,
                 parzen_samples: int = PARZEN_NUM_SAMPLES, cache_dir=None,
                 batch_size: int = 256, seed: int = 0):
        if num_samples is not None and (not isinstance(num_samples, (int, np.integer))
                                        or isinstance(num_samples, bool) or num_samples < 10):
            raise ValueError(f"num_samples must be an integer >= 10; got {num_samples!r}")
        self.seed = seed
        self.batch_size = batch_size
        self.parzen_samples = int(parzen_samples)
        self.info: dict = {}
        if _is_point_spec(real):
            self._init_points(_point_spec(real), metrics, num_samples)
        else:
            self._init_images(real, metrics, extractor, num_samples, cache_dir)

    # -- setup
    @staticmethod
    def _check_metrics(metrics, allowed, default, kind):
        if metrics is None:
            return tuple(default)
        if isinstance(metrics, str):
            metrics = [m.strip() for m in metrics.split(",") if m.strip()]
        metrics = tuple(dict.fromkeys(metrics))
        bad = [m for m in metrics if m not in allowed]
        if bad or not metrics:
            raise ValueError(f"unknown metric(s) {bad} for {kind} data; expected some of "
                             f"{list(allowed)}")
        return metrics

    def _init_points(self, spec, metrics, num_samples):
        self.kind = "points"
        self.spec = spec
        self.metrics = self._check_metrics(metrics, POINT_METRICS, default_metrics(spec),
                                           "2-D point")
        self.modes = None
        try:
            self.modes, self.std = _cov.toy_modes(spec)
        except ValueError:
            if "mode_coverage" in self.metrics:
                raise
        self.num_samples = int(num_samples or _cov.VEEGAN_NUM_SAMPLES)
        n_ref = max(self.num_samples, _cov.VEEGAN_NUM_SAMPLES)
        self.reference = sample_toy_points(spec, n_ref, seed=1)
        self.heldout = sample_toy_points(spec, self.num_samples, seed=2)
        self.info.update({"data": spec.get("name", "toy"), "kind": "points",
                          "num_reference": n_ref, "num_heldout": self.num_samples,
                          "reference": "exact samples of the spec (seed 1); held-out: seed 2"})

    def _init_images(self, real, metrics, extractor, num_samples, cache_dir):
        import keras

        self.kind = "images"
        if isinstance(real, (str, dict)):
            real = _ds.real_images(real)
        elif not isinstance(real, _ds.RealImages):
            arr = _ex.check_images(real, "real")
            real = _ds.RealImages("custom", arr, None, None, None, None, "user-supplied array")
        self.real = real
        self.metrics = self._check_metrics(metrics, IMAGE_METRICS, DEFAULT_IMAGE_METRICS,
                                           "image")
        if extractor is None:
            model, cinfo = _ex.dataset_classifier(real, cache_dir=cache_dir)
            extractor = _ex.classifier_extractor(model, cinfo)
        elif isinstance(extractor, keras.Model):
            extractor = _ex.keras_extractor(extractor)
        elif not isinstance(extractor, _ex.FeatureExtractor):
            raise ValueError(f"extractor must be a FeatureExtractor or keras.Model; got "
                             f"{type(extractor).__name__}")
        self.extractor = extractor
        has_heldout = real.heldout is not None
        if "parzen" in self.metrics and not has_heldout:
            raise ValueError("the parzen metric needs held-out real images (validation + test)")
        self.ref_acts = extractor(real.reference, batch_size=self.batch_size)
        if self.ref_acts.logits is None:
            missing = [m for m in self.metrics if m in _LOGIT_METRICS]
            if missing and metrics is not None:
                raise ValueError(f"metrics {missing} need logits but extractor "
                                 f"{extractor.name!r} gives features only")
            self.metrics = tuple(m for m in self.metrics if m not in _LOGIT_METRICS)
        self.heldout_acts = (extractor(real.heldout, batch_size=self.batch_size)
                             if has_heldout else None)
        default_n = len(real.heldout) if has_heldout else 1000
        self.num_samples = int(num_samples or default_n)
        self.info.update({
            "data": real.name, "kind": "images", "real": real.description,
            "num_reference": int(len(real.reference)),
            "num_heldout": int(len(real.heldout)) if has_heldout else 0,
            "image_shape": list(real.reference.shape[1:]),
            "extractor": {"name": extractor.name,
                          "feature_dim": int(self.ref_acts.features.shape[1]),
                          **{k: v for k, v in extractor.info.items()
                             if isinstance(v, (int, float, str, bool, type(None)))}},
        })

    # -- metric computation
    def _image_metrics(self, acts, images=None, parzen_points=None):
        out = {}
        ref = self.ref_acts
        ms = self.metrics
        if "fid" in ms:
            out["fid"] = _m.frechet_distance(ref.features, acts.features)
        if "kid" in ms:
            k = _m.kernel_distance(ref.features, acts.features)
            out.update({"kid": k["kid"], "kid_std": k["kid_std"], "kid_stderr": k["kid_stderr"]})
        if "is" in ms:
            s = _m.classifier_score(acts.logits)
            out.update({"is": s["is"], "is_std": s["is_std"]})
        if "precision_recall" in ms or "density_coverage" in ms:
            p = _m.prdc(ref.features, acts.features, k_pr=3, k_dc=5)
            if "precision_recall" in ms:
                out.update({"precision": p["precision"], "recall": p["recall"]})
            if "density_coverage" in ms:
                out.update({"density": p["density"], "coverage": p["coverage"]})
        if "class_coverage" in ms:
            probs = _softmax(acts.logits)
            c = _cov.class_coverage(np.argmax(probs, 1), np.max(probs, 1), probs.shape[1])
            out.update({"classes_covered": c["classes_covered"],
                        "class_coverage": c["class_coverage"], "confident": c["confident"],
                        "class_kl": c["class_kl"], "class_counts": c["class_counts"]})
        if "swd" in ms:
            s = _m.sliced_wasserstein_distance(self.real.reference, images)
            out["swd"] = s["swd"]
        if "parzen" in ms:
            held = _pz.images_to_parzen_space(self.real.heldout)
            half = len(held) // 2
            p = _pz.parzen_evaluate(parzen_points, held[:half], held[half:])
            out.update({"parzen_ll": p["parzen_ll"], "parzen_ll_stderr": p["parzen_ll_stderr"],
                        "parzen_sigma": p["parzen_sigma"]})
        return out

    def _point_metrics(self, pts):
        out = {}
        ms = self.metrics
        if "mode_coverage" in ms:
            c = _cov.mode_coverage(pts, self.modes, self.std)
            out.update({"modes_captured": c["modes_captured"], "num_modes": c["num_modes"],
                        "high_quality": c["high_quality"], "mode_counts": c["mode_counts"]})
        if "frechet" in ms:
            out["frechet"] = _m.frechet_distance(self.reference, pts)
        if "kid" in ms:
            k = _m.kernel_distance(self.reference, pts)
            out.update({"kid": k["kid"], "kid_std": k["kid_std"], "kid_stderr": k["kid_stderr"]})
        if "precision_recall" in ms or "density_coverage" in ms:
            p = _m.prdc(self.reference, pts)
            if "precision_recall" in ms:
                out.update({"precision": p["precision"], "recall": p["recall"]})
            if "density_coverage" in ms:
                out.update({"density": p["density"], "coverage": p["coverage"]})
        return out

    def evaluate(self, sampler, seed: int | None = None) -> dict:
        """Metrics for generated samples.

        Args:
          sampler: a ``GANModel`` (``generate(n, seed=...)``), a generator ``keras.Model`` or a
            callable ``f(n, seed=...) -> float32 [n, ...]`` (see :func:`as_sampler`).
          seed: sampling seed (default: the evaluator's); equal seeds give equal latents.

        Returns:
          flat ``dict`` metric name -> Python ``float``/``int`` (``class_counts`` and
          ``mode_counts`` are lists).
        """
        seed = self.seed if seed is None else seed
        sample = _ex.as_sampler(sampler)
        if self.kind == "points":
            pts = _draw(sample, self.num_samples, seed, self.batch_size)
            pts = _m.check_activations(pts.reshape(len(pts), -1), "generated points")
            return self._point_metrics(pts)
        keep = "swd" in self.metrics
        res = self.extractor.from_sampler(sample, self.num_samples, self.batch_size, seed,
                                          keep_samples=keep)
        acts, images = res if keep else (res, None)
        parzen_points = None
        if "parzen" in self.metrics:
            parzen_points = _pz.images_to_parzen_space(_ex.check_images(
                _draw(sample, self.parzen_samples, seed + 1, self.batch_size),
                "generated samples"))
        return self._image_metrics(acts, images, parzen_points)

    def floor(self) -> dict:
        """The same metrics for real held-out data against the reference (``{}`` when there
        is no held-out set). Parzen's floor uses the reference images as kernel centres."""
        if self.kind == "points":
            return self._point_metrics(self.heldout.astype(np.float64))
        if self.heldout_acts is None:
            return {}
        parzen_points = (_pz.images_to_parzen_space(self.real.reference)
                         if "parzen" in self.metrics else None)
        return self._image_metrics(self.heldout_acts, self.real.heldout, parzen_points)


def _draw(sample, n, seed, batch_size):
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=math.ceil(n / batch_size))
    parts = []
    for i, s in enumerate(seeds):
        b = min(batch_size, n - i * batch_size)
        x = np.asarray(sample(b, int(s)), dtype=np.float32)
        if len(x) != b:
            raise ValueError(f"sampler returned {len(x)} samples when asked for {b}")
        parts.append(x)
    return np.concatenate(parts)


def _softmax(logits):
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- run dirs

def _load_generator(run_dir):
    """The run's sampling generator: ``ema_generator.keras`` when the run kept an EMA copy
    (that is what ``GANModel.generate`` and the export use), else ``generator.keras``."""
    import keras

    path = os.path.join(run_dir, "ema_generator.keras")
    if not os.path.isfile(path):
        path = os.path.join(run_dir, "generator.keras")
    if not os.path.isfile(path):
        raise ValueError(f"{path!r} not found: expected a run directory written by "
                         "`tfgan-app train` (config.json + generator.keras)")
    for mod in ("tfgan_app.builders", "tfgan_app.model"):  # register custom layers, if any
        try:
            __import__(mod)
        except Exception:  # noqa: BLE001 -- absent or broken modules just register nothing
            pass
    return keras.saving.load_model(path, compile=False)


def evaluate_run(run_dir, metrics=None, num_samples=None, *, seed: int = 0, extractor=None,
                 real=None, cache_dir=None, parzen_samples: int = PARZEN_NUM_SAMPLES,
                 write: bool = True) -> dict:
    """Evaluate a training run directory and write ``RUN_DIR/eval.json``.

    Loads ``RUN_DIR/config.json`` and ``RUN_DIR/generator.keras``, draws ``num_samples``
    samples (latent ``z ~ N(0, I)`` of size ``config["latent_dim"]``, or ``U(-1, 1)`` when
    ``config["latent_distribution"] == "uniform"``; balanced labels for a conditional
    generator with ``config["num_classes"]``), computes the metrics for the run's data (see
    module docstring) and the real-vs-real floor, writes ``eval.json`` atomically (temporary
    file, then ``os.replace``) and returns the same dict.

    Args:
      run_dir: the run directory.
      metrics: metric names (list or comma-separated string) or ``None`` for the data's
        default set.
      num_samples: generated samples (``None``: see :class:`Evaluator`).
      seed: sampling seed. extractor: feature extractor for images (default: offline
        classifier). real: override the real data (anything :class:`Evaluator` takes).
      cache_dir: classifier cache folder. parzen_samples: samples for Parzen (10,000).
      write: write ``eval.json`` (default ``True``).

    Returns:
      ``{"run_dir", "preset", "data", "kind", "metrics": {name: value}, "floor": {name:
      value}, "num_samples", "num_reference", "num_heldout", "extractor" (images), "seed",
      "seconds", "protocol": {...}}``; non-finite numbers become ``None``.

    Raises:
      ValueError: missing/invalid run files, unknown metrics, data without a real source.
    """
    t0 = time.time()
    run_dir = os.fspath(run_dir)
    cfg_path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(cfg_path):
        raise ValueError(f"{cfg_path!r} not found: expected a run directory written by "
                         "`tfgan-app train`")
    with open(cfg_path, encoding="utf-8") as fh:
        try:
            config = json.load(fh)
        except json.JSONDecodeError as err:
            raise ValueError(f"{cfg_path!r} is not valid JSON: {err}") from None
    data = config.get("data")
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, dict) or not data.get("name") and not _is_point_spec(data or {}):
        raise ValueError(f"{cfg_path!r} has no usable 'data' entry (expected a dict with "
                         f"'name'); got {data!r}")
    generator = _load_generator(run_dir)
    sampler = _ex.as_sampler(generator, latent_dim=config.get("latent_dim"),
                             num_classes=config.get("num_classes"),
                             latent_distribution=config.get("latent_distribution", "normal"))
    ev = Evaluator(real if real is not None else data, metrics=metrics, extractor=extractor,
                   num_samples=num_samples, cache_dir=cache_dir, seed=seed,
                   parzen_samples=parzen_samples)
    gen = ev.evaluate(sampler, seed=seed)
    floor = ev.floor()
    result = {
        "run_dir": os.path.abspath(run_dir),
        "preset": config.get("preset"),
        **ev.info,
        "metrics_requested": list(ev.metrics),
        "num_samples": ev.num_samples,
        "seed": seed,
        "metrics": {k: _finite_or_none(v) for k, v in gen.items()},
        "floor": {k: _finite_or_none(v) for k, v in floor.items()},
        "protocol": _protocol(ev),
        "seconds": round(time.time() - t0, 3),
    }
    if write:
        write_json(os.path.join(run_dir, "eval.json"), result, allow_nan=False)
    return result


def _protocol(ev) -> dict:
    p = {"floor": "the same metrics for real held-out data against the same reference"}
    if ev.kind == "points":
        p["mode_coverage"] = ("VEEGAN: high quality when Euclidean distance to nearest mode <= "
                              "3 std (exact samples: 1 - exp(-4.5) = 98.89%); mode captured "
                              "with >= 1 high-quality sample")
        p["frechet"] = "TF-GAN Frechet distance of raw 2-D points (float64)"
        return p
    p["features"] = "extractor penultimate features (FID/KID/PRDC) and logits (IS, classes)"
    p["kid"] = "TF-GAN block estimator, 10 disjoint subsets; kid_std over subsets"
    p["is"] = "TF-GAN classifier score, mean/std over 10 splits"
    p["precision_recall"] = "Kynkaanniemi et al. 2019, k=3"
    p["density_coverage"] = "Naeem et al. 2020, k=5"
    p["class_coverage"] = ("classes with >= 10% of their uniform share of samples at "
                           "confidence >= 0.9")
    if "parzen" in ev.metrics:
        p["parzen"] = (f"{ev.parzen_samples} samples in [0,1] pixel space, sigma from "
                       "logspace(-1,0,10) on first half of held-out, mean +- stderr on second half")
    return p


# ----------------------------------------------------------------------------- table

_PAIRS = {"kid": "kid_std", "is": "is_std", "parzen_ll": "parzen_ll_stderr"}
_HIDDEN = {"kid_std", "kid_stderr", "is_std", "parzen_ll_stderr", "class_counts",
           "mode_counts", "num_modes"}


def _fmt(values, key):
    v = values.get(key)
    if v is None:
        return "-"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        if key == "modes_captured" and values.get("num_modes"):
            return f"{v}/{values['num_modes']}"
        return str(v)
    s = f"{v:.4g}"
    err = values.get(_PAIRS.get(key, ""))
    if err is not None and key in _PAIRS:
        s += f" ± {err:.2g}"
    return s


def format_table(results: dict) -> str:
    """A plain-text table of an :func:`evaluate_run` result: one row per metric, columns
    ``generated`` and ``real floor`` (``±`` gives the std over subsets/splits, or the standard
    error for Parzen)."""
    if not isinstance(results, dict) or "metrics" not in results:
        raise ValueError("results must be the dict returned by evaluate_run (with 'metrics')")
    gen, floor = results["metrics"], results.get("floor") or {}
    keys = [k for k in gen if k not in _HIDDEN]
    rows = [("metric", "generated", "real floor")]
    rows += [(k, _fmt(gen, k), _fmt(floor, k)) for k in keys]
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    head = f"{results.get('data', '?')} ({results.get('kind', '?')}), " \
           f"{results.get('num_samples', '?')} samples"
    ext = results.get("extractor")
    if isinstance(ext, dict):
        head += f", features: {ext.get('name')}"
        if ext.get("test_accuracy") is not None:
            head += f" (test accuracy {ext['test_accuracy']:.3f})"
    lines.append(head)
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w[j]) for j, c in enumerate(r)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * x for x in w))
    return "\n".join(lines)
