"""The evaluation metrics by name: each one's computation and protocol text side by side.

Which names a kind of output allows, and which it computes by default, is
:mod:`tfgan_app.kinds`' business (``Kind.metrics``, ``Kind.default_metrics``); this module says
what each name computes, from what, and how (the text recorded under ``"protocol"`` in
``eval.json``). Add a metric with :func:`register_metric` (and list its name in a
:class:`~tfgan_app.kinds.Kind`).

A metric reads a :class:`Sample` -- the generated samples, or the held-out real data for the
floor -- and the evaluator's reference (``ev.reference_features``, and for some metrics
``ev.real``, ``ev.modes``/``ev.std``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from tfgan_app.evaluation import coverage as _cov
from tfgan_app.evaluation import metrics as _m
from tfgan_app.evaluation import parzen as _pz
from tfgan_app.evaluation import swd as _sw

__all__ = ["Sample", "Metric", "register_metric", "get_metric", "metric_names", "protocol"]

#: Protocol text of the floor, recorded for every evaluation.
FLOOR_PROTOCOL = "the same metrics for real held-out data against the same reference"


@dataclasses.dataclass
class Sample:
    """One sample set as the metrics read it (generated samples, or held-out real data).

    Attributes:
      features: ``float [N, D]``: extractor features (images) or the raw points (points).
      logits: ``float32 [N, K]`` classifier logits, or ``None``.
      data: the samples themselves: images ``float32 [N, H, W, C]`` in ``[-1, 1]`` or points
        ``float64 [N, 2]``; ``None`` when no selected metric reads them.
      parzen: Parzen kernel centres ``float64 [M, H*W*C]`` in ``[0, 1]``, or ``None``.
    """

    features: np.ndarray
    logits: np.ndarray | None = None
    data: np.ndarray | None = None
    parzen: np.ndarray | None = None
    _memo: dict = dataclasses.field(default_factory=dict, repr=False)

    def once(self, key: str, fn: Callable):
        """``fn()``, computed once per sample set (e.g. PRDC for two metrics)."""
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]


@dataclasses.dataclass(frozen=True)
class Metric:
    """One evaluation metric.

    Attributes:
      name: the name users ask for (``--metrics``), e.g. ``"fid"``.
      compute: ``(evaluator, sample: Sample) -> dict`` of Python numbers (and lists).
      protocol: the text recorded in ``eval.json``, or ``(evaluator) -> str``.
      needs: what the evaluator must provide, among ``"logits"`` (an extractor with logits),
        ``"data"`` (the samples themselves), ``"parzen"`` (held-out real images and a Parzen
        sample draw) and ``"modes"`` (a mixture of modes).
    """

    name: str
    compute: Callable
    protocol: str | Callable
    needs: frozenset = frozenset()

    def protocol_text(self, ev) -> str:
        return self.protocol(ev) if callable(self.protocol) else self.protocol


_METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Register ``metric`` under ``metric.name`` (replacing one of the same name)."""
    if not isinstance(metric, Metric):
        raise ValueError(f"expected a Metric; got {type(metric).__name__}")
    _METRICS[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    """The registered metric ``name``; ``ValueError`` naming the registered ones otherwise."""
    try:
        return _METRICS[name]
    except KeyError:
        raise ValueError(f"no metric {name!r} is registered; registered: "
                         f"{sorted(_METRICS)}") from None


def metric_names() -> list[str]:
    """The registered metric names."""
    return list(_METRICS)


def protocol(ev) -> dict:
    """``{"floor": ..., **ev.protocol_notes(), name: text for each of ev.metrics}``."""
    return {"floor": FLOOR_PROTOCOL, **ev.protocol_notes(),
            **{name: get_metric(name).protocol_text(ev) for name in ev.metrics}}


# ----------------------------------------------------------------------------- the metrics

def _pick(d: dict, *keys) -> dict:
    return {k: d[k] for k in keys}


def _frechet(key):
    return lambda ev, s: {key: _m.frechet_distance(ev.reference_features, s.features)}


def _kid(ev, s):
    return _pick(_m.kernel_distance(ev.reference_features, s.features),
                 "kid", "kid_std", "kid_stderr")


def _prdc(ev, s):
    return s.once("prdc", lambda: _m.prdc(ev.reference_features, s.features, k_pr=3, k_dc=5))


def _classifier_score(ev, s):
    return _pick(_m.classifier_score(s.logits), "is", "is_std")


def _softmax(logits):
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _class_coverage(ev, s):
    probs = _softmax(s.logits)
    c = _cov.class_coverage(np.argmax(probs, 1), np.max(probs, 1), probs.shape[1])
    return _pick(c, "classes_covered", "class_coverage", "confident", "class_kl",
                 "class_counts")


def _swd(ev, s):
    return _pick(_sw.sliced_wasserstein_distance(ev.real.reference, s.data), "swd", "swd_stderr")


def _parzen(ev, s):
    held = _pz.images_to_parzen_space(ev.real.heldout)
    half = len(held) // 2
    return _pick(_pz.parzen_evaluate(s.parzen, held[:half], held[half:]),
                 "parzen_ll", "parzen_ll_stderr", "parzen_sigma")


def _quality(key):
    """PSNR, SSIM or L1 of translated images against their own targets (``ev.targets``)."""
    def compute(ev, s):
        from tfgan_app.translation import image_quality

        q = s.once("quality", lambda: image_quality(ev.targets, s.data))
        return {key: float(np.mean(np.asarray(q[key], np.float64)))}
    return compute


def _accuracy(ev, s):
    return {"accuracy": float(np.mean(np.argmax(s.logits, axis=1) == ev.labels))}


def _mode_coverage(ev, s):
    return _pick(_cov.mode_coverage(s.data, ev.modes, ev.std),
                 "modes_captured", "num_modes", "high_quality", "mode_counts")


for _metric in (
    Metric("fid", _frechet("fid"), "Frechet distance of the features, float64: TF-GAN's formula "
           "(unbiased covariances), matrix square root by eigendecomposition"),
    Metric("frechet", _frechet("frechet"), "Frechet distance of raw 2-D points, float64: TF-GAN's "
           "formula (unbiased covariances), matrix square root by eigendecomposition"),
    Metric("kid", _kid, "TF-GAN block estimator, 10 disjoint subsets; kid_std over subsets"),
    Metric("is", _classifier_score, "TF-GAN classifier score, mean/std(ddof=0) over 10 splits of "
           "rows [i*N//10, (i+1)*N//10) (every row, as the original code and torch-fidelity)",
           frozenset({"logits"})),
    Metric("precision_recall", lambda ev, s: _pick(_prdc(ev, s), "precision", "recall"),
           "Kynkaanniemi et al. 2019, k=3; open k-NN balls (strict <, as the prdc package)"),
    Metric("density_coverage", lambda ev, s: _pick(_prdc(ev, s), "density", "coverage"),
           "Naeem et al. 2020, k=5; open k-NN balls (strict <, as the prdc package: identical "
           "sets give density 1)"),
    Metric("class_coverage", _class_coverage,
           "classes with >= 10% of their uniform share of samples at confidence >= 0.9",
           frozenset({"logits"})),
    Metric("parzen", _parzen,
           lambda ev: (f"{ev.parzen_samples} samples in [0,1] pixel space, sigma from "
                       "logspace(-1,0,10) on first half of held-out, mean +- stderr on "
                       "second half (std ddof=0 / sqrt(n), as Goodfellow's parzen_ll.py)"),
           frozenset({"parzen"})),
    Metric("swd", _swd, "TF-GAN sliced Wasserstein distance of Laplacian-pyramid patches "
           "(Karras et al. 2018): 64 7x7 patches per image and level, each normalised by its "
           "own mean/std (TF-GAN; flat patches become zero vectors), unscaled (Karras et al.'s "
           "tables are x1e3), mean of 4 draws of 147 random projections; swd_stderr over the "
           "draws", frozenset({"data"})),
    Metric("psnr", _quality("psnr"), "translation: tf.image.psnr of each held-out pair (both "
           "images mapped from [-1, 1] to [0, 1], max_val 1), mean over pairs in dB; identical "
           "images give infinity (recorded as null)", frozenset({"data"})),
    Metric("ssim", _quality("ssim"), "translation: tf.image.ssim of each held-out pair on [0, 1] "
           "images (Gaussian window of 11 px, or the image side if smaller; k1 0.01, k2 0.03), "
           "mean over pairs", frozenset({"data"})),
    Metric("l1", _quality("l1"), "translation: mean absolute difference to the target in the "
           "images' [-1, 1] units, mean over pairs", frozenset({"data"})),
    Metric("accuracy", _accuracy,
           lambda ev: (f"translation of labelled images: the offline classifier's top-1 "
                       f"accuracy against the held-out targets' {ev.num_samples} class labels"),
           frozenset({"labels"})),
    Metric("mode_coverage", _mode_coverage,
           "VEEGAN: high quality when Euclidean distance to nearest mode <= 3 std (exact "
           "samples: 1 - exp(-4.5) = 98.89%); mode captured with >= 1 high-quality sample",
           frozenset({"modes", "data"})),
):
    register_metric(_metric)
