"""The training doctor: name a GAN's failure while it trains, and the option that remedies it.

GAN training fails in a few well-known ways. The doctor watches for five of them and says, in
one line, what it saw and which setting to change (README, "Training doctor"):

=============================  ==========================================  =====================
diagnosis                      evidence                                    remedy (``--set``)
=============================  ==========================================  =====================
``vanishing_gradients``        ``|grad G|`` far below its peak while D     ``loss=modified``
                               rejects every generated sample              (from ``minimax``)
``mode_collapse``              modes / classes missing, or generated       ``discriminator.
                               samples much less spread than real ones     pack=2`` (PacGAN),
                                                                           and the rest of the
                                                                           ring/grid recipe
``oscillation``                D's loss jumping from epoch to epoch        ``d_lr`` / 10
``discriminator_overfitting``  D judges held-out real data like fakes,     ``augment=ada``,
                               and an independent judge (the data-copying  ``ada_target=0.6``
                               rate) tells G's samples from unseen real
                               data
``divergence``                 NaN/inf, or exploding losses or             ``d_lr``, ``g_lr``
                               ``|grad G|``: training stops                / 10
=============================  ==========================================  =====================

* :class:`Doctor` -- the Keras callback (``tg.callbacks.Doctor``; opt-in in Python, on by
  default in ``tfgan-app train``, setting ``doctor: on | off | fix``).
* :func:`diagnose` -- the rules over a history dict (:mod:`tfgan_app.doctor.rules`), also
  behind ``tfgan-app doctor RUN``.
* :func:`for_run` / :func:`add_to_report` -- the hooks :func:`tfgan_app.train.train` calls.
* :mod:`tfgan_app.doctor.fix` -- the closed loop (``--doctor fix``): restart with the remedy.

Layers: ``rules`` and ``callback`` are "watching and judging" (they import no job);
``fix`` is a job (it calls :func:`tfgan_app.train.train`).
"""

from __future__ import annotations

import numpy as np

from tfgan_app.doctor.callback import COPY_REFERENCE, SHARE, Doctor, DoctorStop
from tfgan_app.doctor.rules import (DIAGNOSES, PROBES, THRESHOLDS, context_from_settings,
                                    diagnose, probe_every, remedy, remedy_text)

__all__ = ["Doctor", "DoctorStop", "DIAGNOSES", "THRESHOLDS", "diagnose", "remedy", "remedy_text",
           "for_run", "add_to_report", "probe_every", "context_from_settings"]



def _real_and_held_out(settings: dict, info: dict, n: int):
    """Fixed real and held-out batches for a run's data, and the real images they come from.

    Returns ``(real, held_out, real_images)``; each ``None`` where there is none.

    * 2-D mixtures: fresh samples (held out: another seed).
    * Images: the reference split of the run's real-image source, the one ``tfgan-app
      evaluate`` uses (:func:`tfgan_app.evaluation.datasets.real_images`: digits, MNIST from
      IDX files or TFDS's local copy, ``idx:`` files), when its images have the run's shape.
      Its held-out split serves only where D never trains on it (:func:`_held_out_unseen`).
    """
    from tfgan_app import kinds

    name = str(settings.get("dataset"))
    if kinds.toy_spec(name) is not None:
        from tfgan_app.data.toy import sample_toy

        opts = dict(settings.get("dataset_options") or {})
        real = info.get("points")
        if real is None:
            real, _ = sample_toy(name, seed=int(settings["seed"]), **opts)
        held, _ = sample_toy(name, seed=int(settings["seed"]) + 7_919, **opts)
        return np.asarray(real)[:4 * n], np.asarray(held)[:4 * n], None  # 2-D points: cheap
    if len(info.get("data_shape") or ()) != 3:
        return None, None, None
    from tfgan_app.evaluation.datasets import real_images

    config = {**(settings.get("dataset_options") or {}),
              **{k: v for k, v in info.items() if k != "points"}}
    try:
        images = real_images(config)
    except ValueError:  # no offline real-image source for this data (CIFAR-10, folders...)
        return None, None, None
    if tuple(images.reference.shape[1:]) != tuple(info["data_shape"]):  # resized, cropped
        return None, None, None
    rng = np.random.default_rng(0)
    # the first n are the fixed real batch; the data-copying probe measures distances to all
    real = images.reference[rng.permutation(len(images.reference))[:max(n, COPY_REFERENCE)]]
    held = images.heldout[:n] if _held_out_unseen(settings, images) else None
    return real, held, images


def _held_out_unseen(settings: dict, images) -> bool:
    """Whether the held-out split of ``images`` (a run's real-image source) is data the run's
    D never trains on: the run trains on the source's training split (``digits`` /
    ``digits:train``, MNIST's ``train``, an ``idx:`` file whose ``t10k`` twin is the held-out
    set), not on a file halved into reference and held-out (``RealImages.halves``)."""
    if images.heldout is None or images.halves:
        return False
    kind, _, rest = str(settings.get("dataset")).partition(":")
    opts = settings.get("dataset_options") or {}
    split = rest if kind == "digits" and rest else opts.get("split", "train")
    return split == "train"


def for_run(settings: dict, run, info: dict, n: int = 256, initial_history=None) -> list:
    """The doctor of a ``tfgan-app train`` run, as a list of callbacks (empty when the
    setting ``doctor`` is ``off``, and for image-to-image runs)."""
    mode = settings.get("doctor", "on")
    if mode == "off":
        return []
    from tfgan_app import kinds

    kind = kinds.kind_of(info, num_classes=settings.get("num_classes"))
    if kind.name in ("translation", "cyclegan"):
        return []
    real, held, images = _real_and_held_out(settings, info, n)
    modes = std = classifier = None
    spec = kinds.toy_spec(info)
    if spec is not None and "modes" in spec:
        from tfgan_app.evaluation.coverage import toy_modes

        modes, std = toy_modes(spec)
    elif images is not None and images.reference_labels is not None:
        # the evaluation's offline classifier (cached; the digits' trains in seconds, MNIST's
        # in about a minute on 2 cores, once)
        from tfgan_app.evaluation.classifiers import dataset_classifier

        classifier = dataset_classifier(images)[0]
    return [Doctor(real, held, modes=modes, mode_std=std, classifier=classifier,
                   every=probe_every(settings["epochs"]), n=n if modes is None else 4 * n,
                   fix=mode == "fix", interrupt=mode == "fix",
                   path=run.path(run.DOCTOR), log_dir=run.path(run.LOGS),
                   context=context_from_settings(settings),
                   stop_on_nonfinite=False, initial_history=initial_history,
                   # the bookkeeping's wall-time switch: plot_seconds=0 writes every epoch,
                   # and the doctor then probes every due epoch (no time budget)
                   share=None if float(settings.get("plot_seconds", 1.0)) == 0 else SHARE)]


def add_to_report(callbacks, report: dict) -> dict:
    """``report`` with the doctor's ``diagnoses`` (when a doctor watched the run)."""
    for c in callbacks:
        if isinstance(c, Doctor):
            c.write()
            return {**report, "diagnoses": c.diagnoses}
    return report

