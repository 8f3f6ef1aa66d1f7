"""Hyperparameter search with keras-tuner: :class:`GANHyperModel`, :func:`make_tuner`,
:func:`search`, and the ``tfgan-app tune`` command (:mod:`tfgan_app.cli.tune`).

Layout:

* :mod:`.space` -- the default search space of a preset and how values map onto settings.
* :mod:`.hypermodel` -- :class:`GANHyperModel` (build, train and score one trial).
* :mod:`.search` -- :func:`make_tuner`, :func:`distributed_env`, :func:`search`.
* :mod:`.results` -- ``trial_runs.jsonl``, :func:`load_trials`, :func:`best_trial`,
  :func:`write_best`, :func:`format_trials`.
* :mod:`tfgan_app.evaluation.objective` -- the objectives and how a generator is scored
  (:func:`evaluate_objective`).

A GAN's training loss says little about its samples, so every trial is scored by a sample
quality metric, computed after training on **held-out** real data and declared as
``kt.Objective("val_<metric>", direction)``: by default ``frechet`` (min) for the toy 2-D sets
and ``fid`` (min) for images; the table of objectives (``modes_captured``, ``high_quality``,
``kid``, ``precision``, ``recall``, ``density``, ``coverage``, ``is``, ``class_coverage``,
``swd``) is in :mod:`tfgan_app.evaluation.objective`. Samples are drawn with a fixed seed
(``eval_seed``) through the one latent sampler (:mod:`tfgan_app.sampling`), so two trials with
equal generators get equal scores, and :func:`evaluate_objective` scores a trained run
directory the same way (for the toy sets it is exactly ``tfgan-app evaluate RUN --metrics
frechet``).

**Default search space** (:func:`tfgan_app.tuning.space.search_space`; ``p`` is the preset's
value). Every hyperparameter's default is the preset's value, so hyperparameters that are not
tuned (``tune=`` or ``tune_new_entries=False``) keep the preset's setting:

==================== ================================= ===========================================
hyperparameter       values                            settings key
==================== ================================= ===========================================
``d_lr``             Float, log scale, ``[p/10, 10p]`` ``d_lr`` (discriminator Adam learning rate)
``g_lr``             Float, log scale, ``[p/10, 10p]`` ``g_lr``
``beta_1``           Choice ``0.0, 0.5, 0.9`` (+ p)    ``beta_1`` (Adam, both optimizers)
``d_steps``          Choice ``1, 2, 5`` (+ p)          ``d_steps`` (k of Algorithm 1)
``loss``             Choice ``modified``,              ``loss``; ``loss_options`` keeps only the
                     ``least_squares``,                options the chosen loss accepts. Not tuned
                     ``wasserstein``,                  for ``acgan`` presets.
                     ``wasserstein_hinge`` (+ p)
``gradient_penalty`` Choice ``0, 1, 10`` (+ p)         ``gradient_penalty`` (WGAN-GP weight)
``latent_dim``       Choice ``p/2, p, 2p``             ``latent_dim``; absent for translation
                                                       (its generator has no latent input)
``g_width``          Choice ``p/2, p, 2p``             generator width: ``hidden_units`` (mlp: the
                                                       first layer's units, the others scaled in
                                                       proportion), ``base_filters`` (dcgan,
                                                       conditional_dcgan, unet) or ``filters``
                                                       (srgan); absent for ``toy``
``d_width``          same                              discriminator width (also ``patchgan``)
==================== ================================= ===========================================

Narrow or extend it with ``kt.HyperParameters`` passed to the tuner (``hyperparameters=``):
a hyperparameter declared there first wins over the default definition of the same name
(``hp.Fixed("loss", "modified")``, ``hp.Float("d_lr", 1e-3, 1e-2, sampling="log")``), and
``tune_new_entries=False`` tunes only those. Any other hyperparameter whose name is a settings
key (``batch_size``; dotted keys nest: ``generator.dropout``) is applied to the settings as
well; other names raise ``ValueError``. ``GANHyperModel(..., tune=("d_lr", "g_lr"))`` declares
only those defaults.

Example::

    import keras_tuner as kt
    from tfgan_app.tuning import GANHyperModel, make_tuner

    hm = GANHyperModel("ring", overrides={"epochs": 5}, objective="modes_captured")
    tuner = make_tuner(hm, "bayesian", max_trials=20, directory="tuning", project_name="ring")
    tuner.search()
    best = hm.overrides_for(tuner.get_best_hyperparameters()[0])   # settings overrides
    # tfgan-app train --preset ring --config best.json   with {"settings": best}

**Failures.** A trial whose losses become NaN/inf, whose generator emits non-finite samples or
whose objective is not finite raises ``keras_tuner.errors.FailedTrialError``: keras-tuner
records it as ``FAILED`` (with the message) and the search goes on; it stops with an error
after ``max_consecutive_failed_trials`` (default 3) failures in a row.

**Distributed search** uses keras-tuner's own chief/worker mode: one chief process holds the
oracle and serves it over gRPC; workers ask it for trials. keras-tuner reads
``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` when a tuner is
*constructed* (``BaseTuner.__init__``, ``OracleClient``) and again in ``search()``
(``is_chief_oracle``, ``start_server``) -- not at import -- and ``tfgan-app tune --distributed``
sets them before either. Start the chief first, then the workers, all with the same
arguments and the same ``--out`` (a shared directory: trial checkpoints are written by the
workers, ``trial.json`` files and ``best.json`` by the chief)::

    tfgan-app tune --preset ring --max-trials 20 --out tuning/ring \\
        --distributed chief --oracle-address 10.0.0.1:8000
    tfgan-app tune --preset ring --max-trials 20 --out tuning/ring \\
        --distributed worker --tuner-id tuner0 --oracle-address 10.0.0.1:8000
    tfgan-app tune ... --distributed worker --tuner-id tuner1 --oracle-address 10.0.0.1:8000

The chief returns when every trial has ended and every worker has been told to stop
(keras-tuner polls that every 20 s). A worker that dies mid-trial leaves the chief waiting:
run workers under a supervisor and restart them with the same ``--tuner-id`` (the oracle
hands the unfinished trial back to that id).
"""

from tfgan_app.evaluation.objective import (  # noqa: F401
    OBJECTIVES,
    evaluate_objective,
    make_evaluator,
)
from tfgan_app.tuning.hypermodel import GANHyperModel  # noqa: F401
from tfgan_app.tuning.results import (  # noqa: F401
    RUNS_FILE,
    best_trial,
    format_trials,
    load_trials,
    write_best,
)
from tfgan_app.tuning.search import (  # noqa: F401
    SEARCH_FILE,
    TUNERS,
    distributed_env,
    make_tuner,
    search,
)
from tfgan_app.tuning.space import DEFAULT_SPACE, LOSS_CHOICES  # noqa: F401

__all__ = [
    "OBJECTIVES",
    "LOSS_CHOICES",
    "DEFAULT_SPACE",
    "TUNERS",
    "RUNS_FILE",
    "GANHyperModel",
    "make_tuner",
    "distributed_env",
    "search",
    "load_trials",
    "best_trial",
    "write_best",
    "format_trials",
    "make_evaluator",
    "evaluate_objective",
]
