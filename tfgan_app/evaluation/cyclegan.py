"""Judging unpaired translation (CycleGAN) on held-out images: :func:`evaluate_cyclegan`.

The one computation behind a CycleGAN run's ``report.json`` (:func:`cyclegan_report`, written
at the end of ``tfgan-app train``), ``tfgan-app evaluate RUN`` of such a run and
``benchmarks/cyclegan.py``. On held-out images of both domains it measures:

* **cycle reconstruction** (always): PSNR and L1 of ``F(G(a))`` against ``a`` and of
  ``G(F(b))`` against ``b``;
* **translation against the truth** (when ``b[i]`` is the true translation of ``a[i]``, as for
  the offline digits task, whose mapping :func:`tfgan_app.data.unpaired.transform` is known):
  PSNR, SSIM and L1 of ``G(a)`` against ``b`` and of ``F(b)`` against ``a``, beside two
  baselines judged the same way: the **identity** (``a`` itself as the translation of ``a``)
  and **histogram matching** (each image's grey levels mapped monotonically so that their
  distribution matches the other domain's pooled one, as ``skimage.exposure.
  match_histograms`` does per channel);
* **label preservation** (when labels and classifiers are given): the share of ``G(a)`` that a
  classifier trained on domain B labels as ``a``'s label, and of ``F(b)`` that one trained on
  A labels as ``b``'s; the same classifiers' accuracy on the real held-out images is the
  ceiling.

PSNR and SSIM are :func:`tfgan_app.translation.image_quality`'s (images mapped from
``[-1, 1]`` to ``[0, 1]``, mean over images; identical images give infinity, recorded as
``None`` in JSON); L1 is in ``[-1, 1]`` units.
"""

from __future__ import annotations

import numpy as np

from tfgan_app.evaluation.evaluator import register_evaluator
from tfgan_app.evaluation.translation import TranslationEvaluator

__all__ = ["evaluate_cyclegan", "cyclegan_report", "histogram_match", "digits_classifiers",
           "CycleGANEvaluator", "RunTranslators"]

#: What the evaluator's baseline column is (``eval.json``).
BASELINE_IS = "histogram matching of the source to the training domain B"


def histogram_match(images, reference) -> np.ndarray:
    """Each image's grey levels mapped so that their distribution matches ``reference``'s
    pooled one (per channel; ``reference`` with another channel count is averaged to grey
    first, and a grey result is repeated to its channels): ``float32 [N, H, W, C_ref]``."""
    x = np.asarray(images, np.float32)
    ref = np.asarray(reference, np.float32)
    cr = ref.shape[-1]
    if x.shape[-1] != cr:
        x = np.repeat(x.mean(-1, keepdims=True), cr, axis=-1)
    out = np.empty_like(x)
    for c in range(cr):
        r_vals, r_counts = np.unique(ref[..., c], return_counts=True)
        r_q = np.cumsum(r_counts) / r_counts.sum()
        for i in range(len(x)):
            v, inverse, counts = np.unique(x[i, ..., c], return_inverse=True,
                                           return_counts=True)
            q = np.cumsum(counts) / counts.sum()
            out[i, ..., c] = np.interp(q, r_q, r_vals)[inverse].reshape(x.shape[1:3])
    return out


def _quality(target, images, with_ssim: bool) -> dict:
    from tfgan_app.translation import image_quality

    q = image_quality(np.asarray(target, np.float32), np.asarray(images, np.float32))
    keys = ("psnr", "ssim", "l1") if with_ssim else ("psnr", "l1")
    return {k: float(np.mean(np.asarray(q[k], np.float64))) for k in keys}


def _accuracy(classifier, images, labels) -> float:
    from tfgan_app.evaluation.classifiers import classify, to_classifier_input

    pred = classify(to_classifier_input(images, classifier), classifier)[0]
    return float(np.mean(pred == np.asarray(labels).reshape(-1)))


def _as_fn(translate, direction):
    fn = getattr(translate, "translate", None)  # a CycleGAN (itself callable: G only)
    if fn is not None:
        return lambda x: fn(x, direction)
    if not callable(translate):
        raise ValueError(f"expected a callable images -> images or a CycleGAN, got "
                         f"{type(translate).__name__}")
    return translate


def evaluate_cyclegan(translate_ab, translate_ba, a, b, labels_a=None, labels_b=None, *,
                      paired: bool = False, classifier_a=None, classifier_b=None,
                      reference_a=None, reference_b=None) -> dict:
    """Judge a pair of translators on held-out images of both domains.

    Args:
      translate_ab, translate_ba: ``G`` and ``F``: callables ``float32 [N, *shape] -> [N,
        *shape]`` in ``[-1, 1]`` (or a :class:`tfgan_app.cyclegan.CycleGAN`, translated in its
        direction, EMA generators when kept).
      a, b: held-out images of A and B, ``float [N, H, W, C]`` in ``[-1, 1]``.
      labels_a, labels_b: their class labels (``int [N]``), or ``None``.
      paired: ``b[i]`` is the true translation of ``a[i]`` (a known mapping): adds the
        ``a_to_b`` and ``b_to_a`` sections with their baselines.
      classifier_a, classifier_b: ``keras.Model`` images -> logits trained on domain A (B)
        images, for label preservation (both needed, with both label sets).
      reference_a, reference_b: the domains' images whose pooled histograms the histogram
        baseline matches (e.g. the training domains; default ``a`` and ``b``).

    Returns:
      ``{"num_a", "num_b", "cycle": {"psnr_a", "l1_a", "psnr_b", "l1_b"}}``, with ``paired``
      also ``"a_to_b"``/``"b_to_a"``: ``{"model": {psnr, ssim, l1}, "identity": {...},
      "histogram": {...}, "psnr_margin": model minus the better baseline's PSNR, "l1_margin":
      the better baseline's L1 minus the model's}``, and with classifiers ``"labels":
      {"g_of_a_as_a_label", "f_of_b_as_b_label", "real_a", "real_b"}``.

    Raises:
      ValueError: images of the wrong rank, range or shape, mismatched counts.
    """
    from tfgan_app.evaluation.extractors import check_images

    a, b = check_images(a, "held-out images of A"), check_images(b, "held-out images of B")
    g, f = _as_fn(translate_ab, "a_to_b"), _as_fn(translate_ba, "b_to_a")
    g_a, f_b = np.asarray(g(a), np.float32), np.asarray(f(b), np.float32)
    if g_a.shape[1:] != b.shape[1:] or f_b.shape[1:] != a.shape[1:]:
        raise ValueError(f"G(a) has shape {g_a.shape[1:]} and F(b) {f_b.shape[1:]}; expected "
                         f"B's {b.shape[1:]} and A's {a.shape[1:]}")
    qa = _quality(a, f(g_a), False)
    qb = _quality(b, g(f_b), False)
    out = {"num_a": int(len(a)), "num_b": int(len(b)),
           "cycle": {"psnr_a": qa["psnr"], "l1_a": qa["l1"], "psnr_b": qb["psnr"],
                     "l1_b": qb["l1"]}}
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired held-out images need as many of A as of B; got {len(a)} "
                             f"and {len(b)}")
        ref_a = a if reference_a is None else reference_a
        ref_b = b if reference_b is None else reference_b
        for key, src, truth, fake, ref in (("a_to_b", a, b, g_a, ref_b),
                                           ("b_to_a", b, a, f_b, ref_a)):
            ident = src
            if src.shape[1:] != truth.shape[1:]:  # other size or channels: brought to truth's
                import tensorflow as tf

                ident = tf.image.resize(src, truth.shape[1:3]).numpy()
                if ident.shape[-1] != truth.shape[-1]:
                    ident = np.repeat(ident.mean(-1, keepdims=True), truth.shape[-1], -1)
            sec = {"model": _quality(truth, fake, True), "identity": _quality(truth, ident, True),
                   "histogram": _quality(truth, histogram_match(ident, ref), True)}
            sec["psnr_margin"] = sec["model"]["psnr"] - max(sec["identity"]["psnr"],
                                                            sec["histogram"]["psnr"])
            sec["l1_margin"] = min(sec["identity"]["l1"], sec["histogram"]["l1"]) - \
                sec["model"]["l1"]
            out[key] = sec
    if classifier_a is not None and classifier_b is not None and labels_a is not None \
            and labels_b is not None:
        out["labels"] = {"g_of_a_as_a_label": _accuracy(classifier_b, g_a, labels_a),
                         "f_of_b_as_b_label": _accuracy(classifier_a, f_b, labels_b),
                         "real_a": _accuracy(classifier_a, a, labels_a),
                         "real_b": _accuracy(classifier_b, b, labels_b)}
    return out


def digits_classifiers(image_size: int, cache_dir=None):
    """``(classifier_a, classifier_b)`` of the offline digits task, both on 8x8 images (the
    digits' own resolution; :func:`evaluate_cyclegan` area-resizes its images to a
    classifier's input): the package's digits classifier
    (:func:`tfgan_app.evaluation.classifiers.digits_classifier`, domain A's appearance) and
    the same CNN (:func:`~tfgan_app.evaluation.classifiers.train_classifier`, cached on disk)
    trained on the digits ``train`` split as domain B shows it at ``image_size``
    (:func:`tfgan_app.data.unpaired.transform`, then area-resized to 8x8), tested on the
    ``test`` split likewise (accuracy in :func:`~tfgan_app.evaluation.classifiers.
    classifier_info`)."""
    from tfgan_app.data import unpaired
    from tfgan_app.evaluation.classifiers import (digits_classifier, to_classifier_input,
                                                  train_classifier)

    ca = digits_classifier(cache_dir)
    x, y = unpaired._digits("train", int(image_size))
    _, xt_b, yt = unpaired.heldout("digits", image_size=int(image_size))
    cb = train_classifier(to_classifier_input(unpaired.transform(x), ca), y,
                          to_classifier_input(xt_b, ca), yt,
                          num_classes=10, name=f"cyclegan_digits_b{int(image_size)}",
                          cache_dir=cache_dir)[0]
    return ca, cb


def cyclegan_report(gan, info: dict, *, num_images: int | None = None, cache_dir=None,
                    labels: bool = True) -> dict:
    """``report.json`` of a CycleGAN run (and ``tfgan-app evaluate``'s result for one).

    On the offline digits task (``info["task"] == "digits"``): every held-out digit (or the
    first ``num_images``) of the ``test`` split and its known translation
    (:func:`tfgan_app.data.unpaired.heldout`) -- translation PSNR/SSIM/L1 against the truth
    beside the identity and histogram-matching baselines (matched to the *training* domains),
    cycle PSNR both ways, and (``labels``) label preservation with
    :func:`digits_classifiers`. For a folder dataset: cycle PSNR on ``num_images`` (default 64)
    images of ``testA``/``testB``. Data without held-out images (arrays, TFDS): only a note.

    Args:
      gan: a :class:`tfgan_app.cyclegan.CycleGAN` (or anything with ``translate(x,
        direction)``).
      info: the data description (a run's ``config["data"]`` or a dataset's ``info``).

    Returns:
      :func:`evaluate_cyclegan`'s dict plus ``"data"``, ``"heldout"`` (what was judged), and
      non-finite numbers as ``None``; ``{"data", "heldout": None, "note"}`` without held-out
      images.
    """
    from tfgan_app.data import unpaired

    name = info.get("name")
    task = info.get("task")
    if task in unpaired.OFFLINE:
        size = int(info["image_size"])
        a, b, y = unpaired.heldout(task, num_images, image_size=size)
        ref_a, ref_b = unpaired.offline_domains(task, image_size=size)
        clf = digits_classifiers(size, cache_dir) if labels else (None, None)
        rep = evaluate_cyclegan(gan, gan, a, b, y, y, paired=True, classifier_a=clf[0],
                                classifier_b=clf[1], reference_a=ref_a, reference_b=ref_b)
        held = (f"the first {len(a)} images of the digits test split (A) and their known "
                "translations unpaired.transform (B)")
    else:
        pair = unpaired.heldout_domains(info, num_images or 64)
        if pair is None:
            return {"data": name, "heldout": None,
                    "note": "no held-out images (testA/testB folders or the offline task) to "
                            "judge the translation on"}
        rep = evaluate_cyclegan(gan, gan, *pair)
        held = f"{len(pair[0])} images of testA and of testB (no known mapping: cycle only)"
    return _finite({"data": name, "heldout": held, **rep})


def _finite(d):
    from tfgan_app.evaluation.report import finite_or_none

    if isinstance(d, dict):
        return {k: _finite(v) for k, v in d.items()}
    return finite_or_none(d)


class RunTranslators:
    """Both directions of a CycleGAN run directory (:meth:`tfgan_app.rundir.RunDir.translator`
    with ``direction``), with ``CycleGAN.translate``'s interface: ``translate(images,
    direction="a_to_b")``, ``shape_a``, ``shape_b``."""

    def __init__(self, run, use_ema: bool = True):
        self.ab = run.translator(use_ema, "a_to_b")
        self.ba = run.translator(use_ema, "b_to_a")
        self.shape_a, self.shape_b = self.ab.source_shape, self.ab.target_shape

    def translate(self, images, direction: str = "a_to_b") -> np.ndarray:
        from tfgan_app.cyclegan import DIRECTIONS

        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        return (self.ab if direction == "a_to_b" else self.ba).translate(images)


class CycleGANEvaluator(TranslationEvaluator):
    """``tfgan-app evaluate`` (and the tuning objectives) of a CycleGAN run: the translation
    kind's metrics (PSNR, SSIM, L1, classifier accuracy) of ``G(a)`` against the known
    translation of the offline task's held-out digits, beside the histogram-matching baseline
    and the real targets; :meth:`details` adds the whole :func:`cyclegan_report` (both
    directions, identity baseline, cycle PSNR, label preservation). Data without a known
    mapping (folders, TFDS) gives no metrics, only the details' cycle PSNR."""

    baseline_label = "histogram baseline"

    @staticmethod
    def _known(data):
        from tfgan_app.data.unpaired import OFFLINE

        return isinstance(data, dict) and data.get("task") in OFFLINE

    @classmethod
    def provided_by(cls, data) -> set:
        return {"data", "labels"} if cls._known(data) else set()

    def _setup(self, real, extractor, num_samples, cache_dir):
        from tfgan_app.data import unpaired

        if not isinstance(real, dict):
            raise ValueError("a CycleGAN run is judged on its data description (a run's "
                             f"config['data']); got {type(real).__name__}")
        if extractor is not None:
            raise ValueError("extractor does not apply to CycleGAN runs")
        self.data_info, self._cache_dir, self._classifier = dict(real), cache_dir, None
        self.provides = self.provided_by(real)
        self.task, self.labels, self.sources = real.get("task"), None, None
        self.num_samples = num_samples
        self.info.update({"data": real.get("name"), "kind": self.kind.name})
        if not self._known(real):
            return
        size = int(real["image_size"])
        a, b, y = unpaired.heldout(self.task, num_samples, image_size=size)
        self.sources, self.targets, self.labels = a, b, y.astype(np.int64)
        self.num_samples = len(a)
        self._classifier_of = lambda cache: digits_classifiers(size, cache)[1]
        self.info.update({"num_reference": len(a), "num_heldout": len(a),
                          "image_shape": list(b.shape[1:]), "source_shape": list(a.shape[1:]),
                          "real": f"the first {len(a)} test digits (A) and their known "
                                  "translations (B)", "baseline_is": BASELINE_IS})

    def _why_not(self, need: str) -> str:
        return (f"{self.info.get('data')!r} has no known A -> B mapping (only the offline "
                "task unpaired:digits has one); its cycle PSNR is in the details")

    def protocol_notes(self) -> dict:
        return {"baseline": f"the same metrics for {BASELINE_IS} "
                            "(tfgan_app.evaluation.cyclegan.histogram_match)",
                "classifier": "the evaluation CNN trained on domain B's digits "
                              "(tfgan_app.evaluation.cyclegan.digits_classifiers)"}

    def subject(self, run):
        return RunTranslators(run)

    def evaluate(self, translator, seed=None) -> dict:
        return super().evaluate(translator) if self.sources is not None else {}

    def baseline(self) -> dict | None:
        from tfgan_app.data.unpaired import offline_domains

        if self.sources is None:
            return None
        ref_b = offline_domains(self.task, image_size=int(self.data_info["image_size"]))[1]
        return self._judge(histogram_match(self.sources, ref_b))

    def floor(self) -> dict:
        return super().floor() if self.sources is not None else {}

    def details(self, subject) -> dict:
        """:func:`cyclegan_report` of ``subject`` on the same held-out images."""
        return cyclegan_report(subject, self.data_info, num_images=self.num_samples,
                               cache_dir=self._cache_dir)


register_evaluator("cyclegan", CycleGANEvaluator)
