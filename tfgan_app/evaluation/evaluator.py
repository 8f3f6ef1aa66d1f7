"""Evaluate a generator against real data: :class:`Evaluator`, one class per kind of output.

``Evaluator(real, ...)`` asks :func:`tfgan_app.kinds.kind_of` what ``real`` describes and
returns the evaluator for that kind:

* :class:`ImageEvaluator` -- **images** (``config["data"]["name"]`` a registered real-image
  source, e.g. ``"digits"``, ``"mnist"``; a :class:`~tfgan_app.evaluation.datasets.RealImages`;
  an image array): features from the offline dataset classifier (or a given extractor), then
  ``fid``, ``kid``, ``is``, ``precision_recall``, ``density_coverage``, ``class_coverage``
  (default set) and, on request, ``parzen`` and ``swd``.
* :class:`PointEvaluator` -- **points** (a toy 2-D spec: ``"modes"`` + ``"std"``, or the d2l
  ``"gaussian"``): ``mode_coverage`` (mixtures only) and ``frechet`` (Fréchet distance of the
  raw points, by TF-GAN's function) by default; ``kid``, ``precision_recall``,
  ``density_coverage`` on request.
* a kind's registered evaluator (:func:`register_evaluator`) -- **translation**: held-out
  pairs judged beside the input's own baseline
  (:class:`tfgan_app.evaluation.translation.TranslationEvaluator`).

The names each kind allows and its defaults are :mod:`tfgan_app.kinds`' (``Kind.metrics``,
``Kind.default_metrics``); what each computes is in :mod:`tfgan_app.evaluation.registry`.

Every metric is also computed for **real held-out data against the same reference** -- the
*floor*: what a perfect generator would score at that sample size (FID and KID are biased or
noisy at small N; precision/recall/coverage are not 1 for two finite samples of one law).

Sampling: ``evaluate(sampler, seed=s)`` draws its ``n`` samples with one call -- for a
generator exactly ``GANModel.generate(n, seed=s)`` (:func:`~tfgan_app.evaluation.as_sampler`);
Parzen's sample set is a second draw, with seed ``s + 1``.

Sample sizes (defaults): images -- as many generated samples as held-out images (359 for
digits), so the floor and the model score are computed at equal N; Parzen -- 10,000 generated
samples (the paper's protocol), sigma chosen on the first half of the held-out set, reported on
the second half. Points -- 2,500 generated samples (VEEGAN), reference = 2,500 exact samples
(seed 1), held-out = exact samples (seed 2).
"""

from __future__ import annotations

import numpy as np

from tfgan_app import kinds
from tfgan_app.evaluation import classifiers as _clf
from tfgan_app.evaluation import coverage as _cov
from tfgan_app.evaluation import datasets as _ds
from tfgan_app.evaluation import extractors as _ex
from tfgan_app.evaluation import metrics as _m
from tfgan_app.evaluation import parzen as _pz
from tfgan_app.evaluation import registry as _reg

__all__ = [
    "IMAGE_METRICS",
    "DEFAULT_IMAGE_METRICS",
    "POINT_METRICS",
    "DEFAULT_POINT_METRICS",
    "PARZEN_NUM_SAMPLES",
    "Evaluator",
    "ImageEvaluator",
    "evaluator_class",
    "register_evaluator",
    "PointEvaluator",
    "default_metrics",
    "kind_of_reference",
    "sample_toy_points",
]

IMAGE_METRICS = kinds.IMAGES.metrics
DEFAULT_IMAGE_METRICS = kinds.IMAGES.default_metrics
POINT_METRICS = kinds.POINTS.metrics
DEFAULT_POINT_METRICS = kinds.POINTS.default_metrics
PARZEN_NUM_SAMPLES = 10_000

# What a metric may need (registry.Metric.needs), said to a user who asked for it.
_NEEDS = {
    "logits": "an extractor with logits",
    "data": "the samples themselves",
    "parzen": "held-out real images (validation + test)",
    "modes": "a mixture of modes ('modes' and 'std', or name 'ring' / 'grid')",
    "labels": "class labels of the held-out targets and an offline classifier for them",
}

# Kind name -> its Evaluator subclass, for kinds other than points and images
# (register_evaluator; e.g. evaluation.translation for the translation kind).
_BY_KIND: dict = {}


def register_evaluator(kind_name: str, cls) -> None:
    """Make ``Evaluator(real)`` return a ``cls`` when ``real`` is of kind ``kind_name``."""
    _BY_KIND[kind_name] = cls


def evaluator_class(kind: kinds.Kind):
    """The :class:`Evaluator` subclass that judges ``kind``."""
    return _BY_KIND.get(kind.name) or (ImageEvaluator if kind.is_image else PointEvaluator)


def kind_of_reference(real) -> kinds.Kind:
    """The kind of samples an evaluation against ``real`` compares (by
    :func:`tfgan_app.kinds.kind_of`).

    Args:
      real: a data description (``config["data"]``), toy spec or dataset name; a
        :class:`~tfgan_app.evaluation.datasets.RealImages`; or an array of real samples
        (``[N, H, W, C]`` or grayscale ``[N, H, W]`` images).

    Raises:
      ValueError: nothing registered matches.
    """
    if isinstance(real, _ds.RealImages):
        return kinds.kind_of(shape=np.shape(real.reference)[1:])
    if isinstance(real, (str, dict)):
        return kinds.kind_of(real)
    shape = tuple(np.shape(real)[1:])
    return kinds.kind_of(shape=shape + (1,) if len(shape) == 2 else shape)


def _point_modes(spec):
    """``(modes float64 [K, 2], std)`` of a mixture spec, or ``(None, None)``."""
    try:
        return _cov.toy_modes(spec)
    except ValueError:
        return None, None


def default_metrics(data) -> tuple:
    """The default metric names for a data description (``config["data"]``), toy spec or
    dataset name, with the default extractor: the kind's ``default_metrics`` less those the
    data cannot give (``mode_coverage`` for the d2l Gaussian, which has no modes)."""
    kind = kinds.kind_of(data)
    provides = evaluator_class(kind).provided_by(data)
    if provides is None:
        return tuple(kind.default_metrics)
    return tuple(m for m in kind.default_metrics if _reg.get_metric(m).needs <= provides)


def sample_toy_points(spec: dict, n: int, seed: int) -> np.ndarray:
    """Exact samples of a toy spec: ``float32 [n, 2]``.

    Mixtures (``modes`` + ``std``, or name ``ring``/``grid``): equal-weight isotropic Gaussians;
    the d2l Gaussian (``mean`` + ``covariance``, or name ``gaussian``): ``N(mean, covariance)``.
    """
    from tfgan_app.data.toy import gaussian

    spec = kinds.toy_spec(spec)
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


def _draw(sample, n: int, seed, what: str) -> np.ndarray:
    """``float32 [n, ...]``: one call ``sample(n, seed)``, checked for its count."""
    x = np.asarray(sample(n, seed), dtype=np.float32)
    if len(x) != n:
        raise ValueError(f"sampler returned {len(x)} {what} when asked for {n}")
    return x


class Evaluator:
    """Holds the real reference (and its activations) and evaluates samplers against it.

    ``Evaluator(real, ...)`` returns the evaluator for the kind of ``real`` (see
    :func:`kind_of_reference`): an :class:`ImageEvaluator` or a :class:`PointEvaluator`.

    Args:
      real: what to compare with --
        a :class:`~tfgan_app.evaluation.datasets.RealImages`; a dataset name or data config
        (``{"name": "digits"}``) for a registered source; a toy spec dict (points); or an array
        of real images ``float [N, H, W, C]`` in ``[-1, 1]`` (reference only: no floor, no
        Parzen).
      metrics: metric names (a list or a comma-separated string; see :data:`IMAGE_METRICS` /
        :data:`POINT_METRICS`); ``None`` for the default set. Unknown names, or metrics the
        data cannot give (e.g. ``mode_coverage`` without modes), raise ``ValueError``.
      extractor: images only: a :class:`~tfgan_app.evaluation.extractors.FeatureExtractor` or a
        ``keras.Model`` (wrapped with :func:`keras_extractor`); default: the offline classifier
        trained on the dataset's reference images.
      num_samples: generated samples per evaluation (default: size of the held-out set; 2,500
        for points; 1,000 for a bare image array).
      parzen_samples: generated samples for Parzen (default 10,000).
      cache_dir: classifier cache folder. batch_size: images per extractor batch.
      seed: default sampling seed.

    Attributes:
      kind: the :class:`~tfgan_app.kinds.Kind` of the samples compared.
      metrics: the metric names computed (``tuple``). num_samples: generated samples drawn.
      info: what ``eval.json`` records about the reference (data, kind, sizes, extractor).
      reference_features: ``float [N, D]`` the metrics compare with (features or points).
    """

    def __new__(cls, real=None, *args, **kwargs):
        if cls is Evaluator:
            cls = evaluator_class(kind_of_reference(real))
        return super().__new__(cls)

    def __init__(self, real, metrics=None, extractor=None, num_samples: int | None = None,
                 parzen_samples: int = PARZEN_NUM_SAMPLES, cache_dir=None,
                 batch_size: int = 256, seed: int = 0):
        if num_samples is not None and (not isinstance(num_samples, (int, np.integer))
                                        or isinstance(num_samples, bool) or num_samples < 10):
            raise ValueError(f"num_samples must be an integer >= 10; got {num_samples!r}")
        self.kind = kind_of_reference(real)
        self.seed = seed
        self.batch_size = batch_size
        self.parzen_samples = int(parzen_samples)
        self.info: dict = {}
        names = self._parse_metrics(metrics)
        self.provides: set = set()
        self._setup(real, extractor, num_samples, cache_dir)
        self.metrics = self._select_metrics(names)
        self._needs = set().union(*(_reg.get_metric(m).needs for m in self.metrics))

    # -- subclass hooks
    def _setup(self, real, extractor, num_samples, cache_dir):
        """Load the reference; set ``reference_features``, ``num_samples``, ``provides``."""
        raise NotImplementedError

    def _sample(self, sample, seed) -> _reg.Sample:
        """The generated :class:`~tfgan_app.evaluation.registry.Sample`."""
        raise NotImplementedError

    def _floor_sample(self) -> _reg.Sample | None:
        """The held-out real :class:`~tfgan_app.evaluation.registry.Sample`, or ``None``."""
        raise NotImplementedError

    def protocol_notes(self) -> dict:
        """Protocol lines beyond the metrics' own (see :func:`registry.protocol`)."""
        return {}

    @classmethod
    def provided_by(cls, data) -> set | None:
        """What a data description gives the metrics (``Metric.needs``), or ``None`` when
        that depends on the extractor (images)."""
        return None

    #: The column names of ``floor()`` and ``baseline()`` in tables.
    floor_label = "real floor"
    baseline_label = None

    def subject(self, run):
        """What this evaluator judges of a :class:`tfgan_app.rundir.RunDir`: its sampler."""
        return run.sampler()

    def baseline(self) -> dict | None:
        """The same metrics for the data's own baseline, or ``None`` (none for samples from
        noise; translation's input baseline)."""
        return None

    # -- metric selection
    def _parse_metrics(self, metrics):
        if metrics is None:
            return None
        if isinstance(metrics, str):
            metrics = [m.strip() for m in metrics.split(",") if m.strip()]
        metrics = tuple(dict.fromkeys(metrics))
        allowed = self.kind.metrics
        bad = [m for m in metrics if m not in allowed]
        if bad or not metrics:
            raise ValueError(f"unknown metric(s) {bad} for {self.kind.name} data; expected "
                             f"some of {list(allowed)}")
        return metrics

    def _select_metrics(self, names) -> tuple:
        if names is None:
            return tuple(m for m in self.kind.default_metrics
                         if _reg.get_metric(m).needs <= self.provides)
        for name in names:
            lacking = sorted(_reg.get_metric(name).needs - self.provides)
            if lacking:
                need = lacking[0]
                raise ValueError(f"metric {name!r} needs {_NEEDS.get(need, need)}: "
                                 f"{self._why_not(need)}")
        return names

    def _why_not(self, need: str) -> str:
        """Why this evaluator cannot provide ``need`` (for the error message)."""
        return f"{self.info.get('data')!r} has none"

    # -- evaluation
    def _compute(self, sample: _reg.Sample) -> dict:
        out = {}
        for name in self.metrics:
            out.update(_reg.get_metric(name).compute(self, sample))
        return out

    def evaluate(self, sampler, seed: int | None = None) -> dict:
        """Metrics for generated samples.

        Args:
          sampler: a ``GANModel`` or :class:`tfgan_app.sampling.Sampler` (``generate(n,
            seed=...)``), a generator ``keras.Model`` or a callable ``f(n, seed=...) ->
            float32 [n, ...]`` (see :func:`~tfgan_app.evaluation.as_sampler`).
          seed: sampling seed (default: the evaluator's). The sample set is exactly
            ``sampler(num_samples, seed)`` -- for a generator, ``GANModel.generate(
            num_samples, seed=seed)``; equal seeds give equal latents.

        Returns:
          flat ``dict`` metric name -> Python ``float``/``int`` (``class_counts`` and
          ``mode_counts`` are lists).
        """
        seed = self.seed if seed is None else seed
        return self._compute(self._sample(_ex.as_sampler(sampler), seed))

    def floor(self) -> dict:
        """The same metrics for real held-out data against the reference (``{}`` when there
        is no held-out set). Parzen's floor uses the reference images as kernel centres."""
        sample = self._floor_sample()
        return {} if sample is None else self._compute(sample)


class PointEvaluator(Evaluator):
    """:class:`Evaluator` for 2-D points: exact samples of a toy spec are the reference
    (2,500 or ``num_samples``, seed 1) and the held-out set (``num_samples``, seed 2).

    Attributes (beyond :class:`Evaluator`'s): ``spec`` (the toy spec), ``modes``
    (``float64 [K, 2]`` or ``None``), ``std``, ``reference`` and ``heldout`` (``float32
    [N, 2]``).
    """

    @classmethod
    def provided_by(cls, data) -> set:
        has_modes = _point_modes(kinds.toy_spec(data))[0] is not None
        return {"data"} | ({"modes"} if has_modes else set())

    def _setup(self, real, extractor, num_samples, cache_dir):
        spec = kinds.toy_spec(real)
        if spec is None:
            what = repr(real) if isinstance(real, (str, dict)) else \
                f"an array of shape {np.shape(real)}"
            raise ValueError(f"2-D point data needs a toy spec to draw exact reference samples "
                             f"from ('modes' + 'std', 'mean' + 'covariance', or the name "
                             f"'gaussian' / 'ring' / 'grid'); got {what}")
        if extractor is not None:
            raise ValueError("extractor applies to images only; 2-D points are compared raw")
        self.spec = spec
        self.modes, self.std = _point_modes(spec)
        self.provides = self.provided_by(spec)
        self.num_samples = int(num_samples or _cov.VEEGAN_NUM_SAMPLES)
        n_ref = max(self.num_samples, _cov.VEEGAN_NUM_SAMPLES)
        self.reference = sample_toy_points(spec, n_ref, seed=1)
        self.heldout = sample_toy_points(spec, self.num_samples, seed=2)
        self.reference_features = self.reference
        self.info.update({"data": spec.get("name", "toy"), "kind": self.kind.name,
                          "num_reference": n_ref, "num_heldout": self.num_samples,
                          "reference": "exact samples of the spec (seed 1); held-out: seed 2"})

    def _why_not(self, need: str) -> str:
        if need == "modes":
            return f"{self.info['data']!r} is not a mixture of modes"
        return super()._why_not(need)

    def _sample(self, sample, seed):
        pts = _draw(sample, self.num_samples, seed, "points")
        pts = _m.check_activations(pts.reshape(len(pts), -1), "generated points")
        return _reg.Sample(features=pts, data=pts)

    def _floor_sample(self):
        held = self.heldout.astype(np.float64)
        return _reg.Sample(features=held, data=held)


class ImageEvaluator(Evaluator):
    """:class:`Evaluator` for images: a :class:`~tfgan_app.evaluation.datasets.RealImages`
    reference and held-out set, compared through a feature extractor.

    Attributes (beyond :class:`Evaluator`'s): ``real`` (the ``RealImages``), ``extractor``,
    ``ref_acts`` and ``heldout_acts`` (:class:`~tfgan_app.evaluation.extractors.Activations`
    of the reference and held-out images; ``heldout_acts`` is ``None`` without a held-out
    set).
    """

    def _setup(self, real, extractor, num_samples, cache_dir):
        import keras

        if isinstance(real, (str, dict)):
            real = _ds.real_images(real)
        elif not isinstance(real, _ds.RealImages):
            arr = _ex.check_images(real, "real")
            real = _ds.RealImages("custom", arr, None, None, None, None, "user-supplied array")
        self.real = real
        if extractor is None:
            model, cinfo = _clf.dataset_classifier(real, cache_dir=cache_dir)
            extractor = _clf.classifier_extractor(model, cinfo)
        elif isinstance(extractor, keras.Model):
            extractor = _ex.keras_extractor(extractor)
        elif not isinstance(extractor, _ex.FeatureExtractor):
            raise ValueError(f"extractor must be a FeatureExtractor or keras.Model; got "
                             f"{type(extractor).__name__}")
        self.extractor = extractor
        has_heldout = real.heldout is not None
        self.ref_acts = extractor(real.reference, batch_size=self.batch_size)
        self.reference_features = self.ref_acts.features
        self.heldout_acts = (extractor(real.heldout, batch_size=self.batch_size)
                             if has_heldout else None)
        self.provides = {"data"} | ({"logits"} if self.ref_acts.logits is not None else set()) \
            | ({"parzen"} if has_heldout else set())
        self.num_samples = int(num_samples or (len(real.heldout) if has_heldout else 1000))
        self.info.update({
            "data": real.name, "kind": self.kind.name, "real": real.description,
            "num_reference": int(len(real.reference)),
            "num_heldout": int(len(real.heldout)) if has_heldout else 0,
            "image_shape": list(real.reference.shape[1:]),
            "extractor": {"name": extractor.name,
                          "feature_dim": int(self.ref_acts.features.shape[1]),
                          **{k: v for k, v in extractor.info.items()
                             if isinstance(v, (int, float, str, bool, type(None)))}},
        })

    def _why_not(self, need: str) -> str:
        if need == "logits":
            return f"extractor {self.extractor.name!r} gives features only"
        if need == "parzen":
            return f"{self.real.name!r} has no held-out images"
        return super()._why_not(need)

    def protocol_notes(self) -> dict:
        return {"features": "extractor penultimate features (FID/KID/PRDC) and logits (IS, "
                            "classes)"}

    def _sample(self, sample, seed):
        keep = "data" in self._needs
        res = self.extractor.from_sampler(sample, self.num_samples, self.batch_size, seed,
                                          keep_samples=keep)
        acts, images = res if keep else (res, None)
        parzen = None
        if "parzen" in self._needs:
            parzen = _pz.images_to_parzen_space(_ex.check_images(
                _draw(sample, self.parzen_samples, seed + 1, "samples"), "generated samples"))
        return _reg.Sample(acts.features, acts.logits, images, parzen)

    def _floor_sample(self):
        if self.heldout_acts is None:
            return None
        parzen = (_pz.images_to_parzen_space(self.real.reference)
                  if "parzen" in self._needs else None)
        return _reg.Sample(self.heldout_acts.features, self.heldout_acts.logits,
                           self.real.heldout, parzen)
