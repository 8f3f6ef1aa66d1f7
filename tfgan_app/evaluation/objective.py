"""The tuning objective: one sample-quality number per trained generator, on held-out data.

A GAN's training loss says little about its samples, so ``tfgan-app tune`` scores every trial
by a metric of :class:`~tfgan_app.evaluation.Evaluator`, computed after training against
**held-out** real data. Keras-tuner sees it as ``kt.Objective("val_<name>", direction)``:

=================== ========= ==================================================================
objective           direction what is compared
=================== ========= ==================================================================
``frechet``         min       toy 2-D sets (default): Fréchet distance of the raw points against
                              2,500 fresh exact samples of the target law (not the training
                              points)
``modes_captured``  max       ring/grid: VEEGAN modes captured (2,500 samples)
``high_quality``    max       ring/grid: fraction of samples within 3 std of a mode
``fid``             min       images (default): FID in the offline classifier's feature space
                              against the dataset's **held-out split** (digits: the 359 test
                              images), as many generated images as held-out ones
``kid``             min       images or points: KID against the same held-out reference
``precision``,      max       PRDC against the held-out reference
``recall``,
``density``,
``coverage``
``is``              max       images: classifier score
``class_coverage``  max       images: fraction of classes covered
``swd``             min       images: sliced Wasserstein distance
``psnr``            max       translation (default): PSNR (dB) of the translated held-out
                              sources against their targets, every held-out pair
``ssim``            max       translation: SSIM on the same pairs
``l1``              min       translation: mean absolute error on the same pairs
``accuracy``        max       translation of digits: the offline classifier's accuracy on the
                              translated held-out digits
=================== ========= ==================================================================

An objective applies to a kind of output (:func:`tfgan_app.kinds.kind_of`) when the metric
that computes it is one of the kind's ``metrics``; the kind's ``default_objective`` is the
default. Samples are drawn through ``.generate(n, seed=...)`` with a fixed seed -- the
``GANModel`` itself during a trial, :meth:`tfgan_app.rundir.RunDir.sampler` for a finished run,
both :mod:`tfgan_app.sampling` -- so a trial and :func:`evaluate_objective` on the retrained
run draw the same latent vectors and give the same value (for the toy sets it is exactly
``tfgan-app evaluate RUN --metrics frechet``).
"""

from __future__ import annotations

import dataclasses
import numbers

__all__ = ["OBJECTIVES", "objective_key", "make_evaluator", "score", "evaluate_objective"]

# Objectives computed by an Evaluator metric of another name (the others: their own name).
_METRIC_OF = {"modes_captured": "mode_coverage", "high_quality": "mode_coverage",
              "precision": "precision_recall", "recall": "precision_recall",
              "density": "density_coverage", "coverage": "density_coverage"}
_MINIMISED = ("frechet", "fid", "kid", "swd", "l1")

#: objective name -> (the Evaluator metric that computes it, ``"min"`` or ``"max"``)
OBJECTIVES = {name: (_METRIC_OF.get(name, name), "min" if name in _MINIMISED else "max")
              for name in ("frechet", "modes_captured", "high_quality", "fid", "kid",
                           "precision", "recall", "density", "coverage", "is",
                           "class_coverage", "swd", "psnr", "ssim", "l1", "accuracy")}


def objective_key(objective: str, kind=None) -> str:
    """The objective's name in :data:`OBJECTIVES` (a ``val_`` prefix is dropped).

    Args:
      objective: e.g. ``"fid"`` or ``"val_fid"``.
      kind: a :class:`tfgan_app.kinds.Kind`; when given, the objective must apply to it.

    Raises:
      ValueError: an unknown objective, or one that does not apply to ``kind``'s data,
        naming the valid ones.
    """
    key = str(objective)
    if key.startswith("val_"):
        key = key[4:]
    if key not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; valid objectives: "
                         f"{', '.join(sorted(OBJECTIVES))} (optionally prefixed 'val_')")
    if kind is not None and OBJECTIVES[key][0] not in kind.metrics:
        valid = [k for k, (metric, _) in OBJECTIVES.items() if metric in kind.metrics]
        raise ValueError(f"objective {key!r} does not apply to {kind.name} data; valid: "
                         f"{', '.join(valid)}")
    return key


def make_evaluator(data_info: dict, objective: str, num_samples: int | None = None,
                   cache_dir: str | None = None):
    """The :class:`~tfgan_app.evaluation.Evaluator` that scores ``objective`` for a run's data.

    Args:
      data_info: the data description (``config["data"]``, i.e.
        :func:`tfgan_app.train.make_dataset`'s ``info``; its ``"points"`` are ignored).
      objective: a name of :data:`OBJECTIVES`.
      num_samples: generated samples per evaluation. Points: default 2,500, against the toy
        spec's exact samples. Translation: the first ``num_samples`` held-out pairs (default
        all; :class:`~tfgan_app.evaluation.translation.TranslationEvaluator`). Images:
        default the held-out split's size; the held-out split
        is the reference and features come from the offline classifier trained on the
        training split (cached in ``cache_dir``).

    Raises:
      ValueError: an unknown objective, or one that does not apply to the data's kind.
    """
    from tfgan_app import kinds
    from tfgan_app.evaluation import (Evaluator, ImageEvaluator, classifier_extractor,
                                      dataset_classifier, real_images)
    from tfgan_app.evaluation.evaluator import evaluator_class

    data_info = {k: v for k, v in data_info.items() if k != "points"}
    kind = kinds.kind_of(data_info)
    metric = OBJECTIVES[objective_key(objective, kind)][0]
    if evaluator_class(kind) is not ImageEvaluator:  # points; translation's held-out pairs
        return Evaluator(data_info, metrics=[metric], num_samples=num_samples,
                         cache_dir=cache_dir)
    real = real_images(data_info)
    model, cinfo = dataset_classifier(real, cache_dir=cache_dir)
    extractor = classifier_extractor(model, cinfo)
    if real.heldout is not None:
        real = dataclasses.replace(
            real, reference=real.heldout, reference_labels=real.heldout_labels, heldout=None,
            heldout_labels=None, description=f"held-out split of {real.name} as the reference")
    return Evaluator(real, metrics=[metric], extractor=extractor,
                     num_samples=num_samples or len(real.reference), cache_dir=cache_dir)


def score(evaluator, sampler, seed: int = 0) -> dict:
    """The scalar metrics of ``evaluator`` for ``sampler``, keyed as keras-tuner sees them.

    Args:
      evaluator: from :func:`make_evaluator`.
      sampler: anything with ``generate(n, seed=...) -> float32 [n, ...]`` (a ``GANModel``,
        a :class:`tfgan_app.sampling.Sampler`).
      seed: sampling seed (latent vectors from :func:`tfgan_app.sampling.latent_vectors`).

    Returns:
      ``{"val_<metric>": float}`` (non-scalar results such as ``mode_counts`` left out).
    """
    res = evaluator.evaluate(sampler, seed=seed)
    return {"val_" + k: float(v) for k, v in res.items()
            if isinstance(v, numbers.Real) and not isinstance(v, bool)}


def evaluate_objective(run_dir: str, objective: str | None = None,
                       num_samples: int | None = None, seed: int = 0,
                       cache_dir: str | None = None) -> dict:
    """Score a run directory written by ``tfgan-app train`` exactly as a search trial is
    scored (same evaluator, sample count, sampling seed and latent vectors).

    Samples from :meth:`tfgan_app.rundir.RunDir.sampler` (the EMA generator when the run kept
    one, as ``GANModel.generate`` does; a translation run's translator). ``objective``
    defaults to the run's kind's ``default_objective`` (``frechet`` for points, ``fid`` for
    images, ``psnr`` for translation).

    Returns:
      ``{"val_<metric>": float, ...}`` (e.g. ``{"val_frechet": 0.05}``).

    Raises:
      tfgan_app.rundir.RunDirError: not a finished run directory.
      ValueError: an objective that does not apply to the run's data.
    """
    from tfgan_app.rundir import RunDir

    run = RunDir(run_dir)
    ev = make_evaluator(run.data, objective or run.kind.default_objective, num_samples,
                        cache_dir)
    return score(ev, ev.subject(run), seed)
