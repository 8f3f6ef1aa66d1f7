"""Judging image-to-image translation on held-out pairs: :class:`TranslationEvaluator`.

The one computation behind ``tfgan-app evaluate RUN`` of a translation run, the run's
``report.json`` (:func:`translation_report`, written at the end of training) and the tuning
objectives ``psnr``/``ssim``/``l1``/``accuracy``. Which metrics apply, and the defaults, are
the ``translation`` kind's (:mod:`tfgan_app.kinds`); what each computes and its protocol text
are in :mod:`tfgan_app.evaluation.registry`.

Three image sets are judged against the held-out targets
(:func:`tfgan_app.data.paired.heldout_pairs`: the data's task applied to the test split of its
offline images, never seen in training):

* **generated**: the (EMA) generator's translation of the held-out sources;
* **baseline**: the input's own baseline, the source resized bicubically to the target
  (:func:`tfgan_app.data.paired.naive_translation`: plain upsampling for super-resolution,
  the masked input for inpainting);
* **real targets** (the floor): the targets themselves (PSNR infinite, recorded as ``null``;
  SSIM 1; L1 0; the classifier's accuracy on real digits).
"""

from __future__ import annotations

import numpy as np

from tfgan_app.evaluation import registry as _reg
from tfgan_app.evaluation.evaluator import Evaluator, register_evaluator

__all__ = ["TranslationEvaluator", "translation_report", "BASELINE_IS"]

#: What the baseline column is (recorded in ``eval.json`` and ``report.json``).
BASELINE_IS = "the source resized bicubically to the target"


def _digit_labels(info: dict, n: int):
    from tfgan_app.data.digits import load_digits_arrays

    labels = load_digits_arrays("test")[1].astype(np.int64)
    if len(labels) < n:
        raise ValueError(f"{n} held-out digit pairs but {len(labels)} test labels")
    return labels[:n]


def _digits_classifier(cache_dir):
    from tfgan_app.evaluation.classifiers import digits_classifier

    return digits_classifier(cache_dir)


#: Offline image sources whose held-out targets have class labels: name -> (labels of the
#: first n held-out targets, the offline classifier ``(cache_dir) -> keras.Model``).
LABELLED_SOURCES = {"digits": (_digit_labels, _digits_classifier)}


class TranslationEvaluator(Evaluator):
    """:class:`~tfgan_app.evaluation.Evaluator` of a translation run's data description
    (``config["data"]`` with ``"paired": True``, derived from offline images).

    ``evaluate(translator)`` judges a ``TranslationGAN`` (its ``translate``: the EMA generator
    when kept), a :class:`tfgan_app.translation.Translator` or a callable ``sources -> images``
    on the held-out pairs (the first ``num_samples`` of them; default all); ``baseline()`` and
    ``floor()`` judge the bicubic input and the real targets the same way.

    Attributes (beyond :class:`Evaluator`'s): ``sources``, ``targets`` (``float32`` in
    ``[-1, 1]``), ``labels`` (``int64 [N]`` or ``None``), ``task``.
    """

    floor_label = "real targets"
    baseline_label = "input baseline"

    @staticmethod
    def _labelled(data):
        """``(labels_of, classifier_of)`` of a labelled offline source, or ``None``."""
        if not isinstance(data, dict) or data.get("reader"):
            return None
        return LABELLED_SOURCES.get(data.get("source"))

    @classmethod
    def provided_by(cls, data) -> set:
        return {"data"} | ({"labels"} if cls._labelled(data) else set())

    def _setup(self, real, extractor, num_samples, cache_dir):
        from tfgan_app.data.paired import heldout_pairs

        if not isinstance(real, dict):
            raise ValueError("translation is judged on a data description with held-out pairs "
                             f"(a run's config['data']); got {type(real).__name__}")
        if extractor is not None:
            raise ValueError("extractor does not apply to translation: the metrics compare "
                             "each translated image with its own target")
        sources, targets = heldout_pairs(real)
        n = len(targets) if num_samples is None else int(num_samples)
        if n > len(targets):
            raise ValueError(f"num_samples {n} exceeds the {len(targets)} held-out pairs of "
                             f"{real.get('name')!r}")
        self.sources, self.targets = sources[:n], targets[:n]
        self.num_samples = n
        self.task = dict(real.get("task") or {})
        labelled = self._labelled(real)
        self.labels = labelled[0](real, n) if labelled else None
        self._classifier_of = labelled[1] if labelled else None
        self._classifier = None
        self._cache_dir = cache_dir
        self.provides = self.provided_by(real)
        self.info.update({
            "data": real.get("name"), "kind": self.kind.name, "task": self.task,
            "num_reference": n, "num_heldout": n,
            "image_shape": [int(v) for v in self.targets.shape[1:]],
            "source_shape": [int(v) for v in self.sources.shape[1:]],
            "real": f"the first {n} held-out pairs: task {self.task.get('name')!r} on the test "
                    f"split of {real.get('source')!r}", "baseline_is": BASELINE_IS})

    def _why_not(self, need: str) -> str:
        if need == "labels":
            return (f"{self.info.get('data')!r} has no class labels (labelled offline sources: "
                    f"{', '.join(LABELLED_SOURCES)})")
        return super()._why_not(need)

    def protocol_notes(self) -> dict:
        notes = {"floor": "the same metrics for the real targets themselves",
                 "baseline": f"the same metrics for {BASELINE_IS} "
                             "(tfgan_app.data.paired.naive_translation)"}
        if "labels" in self._needs:
            notes["classifier"] = ("the offline digits classifier (tfgan_app.evaluation."
                                   "classifiers.digits_classifier, 8x8 inputs) on images "
                                   "area-downsampled to its input size")
        return notes

    # -- what is judged
    def subject(self, run):
        return run.translator()

    def _logits(self, images):
        from tfgan_app.evaluation.classifiers import to_classifier_input

        if self._classifier is None:
            self._classifier = self._classifier_of(self._cache_dir)
        x = to_classifier_input(images, self._classifier)
        return np.concatenate([np.asarray(self._classifier(x[i:i + 512], training=False))
                               for i in range(0, len(x), 512)]).astype(np.float32)

    def _judge(self, images) -> dict:
        from tfgan_app.evaluation.extractors import check_images

        images = check_images(images, "translated images")
        if images.shape[1:] != self.targets.shape[1:]:
            raise ValueError(f"translated images have shape {images.shape[1:]} but the targets "
                             f"{self.targets.shape[1:]}")
        logits = self._logits(images) if "labels" in self._needs else None
        return self._compute(_reg.Sample(features=None, logits=logits, data=images))

    def evaluate(self, translator, seed: int | None = None) -> dict:
        """The metrics of ``translator``'s images for the held-out sources (``seed`` is
        unused: inference is deterministic)."""
        fn = getattr(translator, "translate", translator)
        if not callable(fn):
            raise ValueError("translation is judged through translate(sources) (a "
                             f"TranslationGAN or Translator); got {type(translator).__name__}")
        return self._judge(fn(self.sources))

    def baseline(self) -> dict:
        from tfgan_app.data.paired import naive_translation

        return self._judge(naive_translation(self.sources, self.targets.shape[1:]))

    def floor(self) -> dict:
        return self._judge(self.targets)


register_evaluator("translation", TranslationEvaluator)


def translation_report(translator, info: dict, metrics=None, cache_dir=None) -> dict:
    """``report.json`` of an image-to-image run (also what ``tfgan-app train`` prints): the
    kind's default metrics (or ``metrics``) of ``translator`` (a ``TranslationGAN``: its EMA
    generator when kept) on every held-out pair, beside the input's own baseline and the real
    targets, computed by :class:`TranslationEvaluator` as ``tfgan-app evaluate`` computes them.

    Returns:
      ``{"num_pairs", "task", "model": {metric: value}, "baseline": {...}, "real_targets":
      {...}, "baseline_is"}`` (an infinite PSNR is ``None``).
    """
    from tfgan_app.evaluation.report import finite_or_none

    ev = Evaluator({k: v for k, v in info.items() if k != "points"}, metrics=metrics,
                   cache_dir=cache_dir)
    clean = lambda d: {k: finite_or_none(v) for k, v in d.items()}  # noqa: E731
    return {"num_pairs": ev.num_samples, "task": info.get("task"),
            "model": clean(ev.evaluate(translator)), "baseline": clean(ev.baseline()),
            "real_targets": clean(ev.floor()), "baseline_is": BASELINE_IS}
