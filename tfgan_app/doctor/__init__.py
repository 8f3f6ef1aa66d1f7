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
``discriminator_overfitting``  D judges held-out real data like fakes      ``augment=ada``,
                                                                           ``ada_target=0.6``
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

from tfgan_app.doctor.callback import SHARE, Doctor, DoctorStop
from tfgan_app.doctor.rules import (DIAGNOSES, PROBES, THRESHOLDS, context_from_settings,
                                    diagnose, probe_every, remedy, remedy_text)

__all__ = ["Doctor", "DoctorStop", "DIAGNOSES", "THRESHOLDS", "diagnose", "remedy", "remedy_text",
           "for_run", "add_to_report", "probe_every", "context_from_settings"]



def _real_and_held_out(settings: dict, info: dict, n: int):
    """Fixed real and held-out batches for a run's data, or ``None`` where there are none."""
    from tfgan_app import kinds

    name = str(settings.get("dataset"))
    if kinds.toy_spec(name) is not None:
        from tfgan_app.data.toy import sample_toy

        opts = dict(settings.get("dataset_options") or {})
        real = info.get("points")
        if real is None:
            real, _ = sample_toy(name, seed=int(settings["seed"]), **opts)
        held, _ = sample_toy(name, seed=int(settings["seed"]) + 7_919, **opts)
        return np.asarray(real)[:4 * n], np.asarray(held)[:4 * n]  # 2-D points: cheap
    if name in ("digits", "digits:train") and not (settings.get("dataset_options") or {}):
        from tfgan_app.data import load_digits_arrays

        real, _ = load_digits_arrays("train")
        held, _ = load_digits_arrays("test")
        rng = np.random.default_rng(0)
        return real[rng.permutation(len(real))[:n]], held[:n]
    return None, None


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
    real, held = _real_and_held_out(settings, info, n)
    modes = std = classifier = None
    spec = kinds.toy_spec(info)
    if spec is not None and "modes" in spec:
        from tfgan_app.evaluation.coverage import toy_modes

        modes, std = toy_modes(spec)
    elif real is not None and str(settings.get("dataset")).startswith("digits"):
        from tfgan_app.evaluation.classifiers import digits_classifier

        classifier = digits_classifier()
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

