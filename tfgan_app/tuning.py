"""Hyperparameter search with keras-tuner: :class:`GANHyperModel`, :func:`make_tuner`,
:func:`search`, and the ``tfgan-app tune`` command.

A GAN's training loss says little about its samples, so every trial is scored by a sample
quality metric from :mod:`tfgan_app.evaluation`, computed after training on **held-out** real
data (the objective is declared as ``kt.Objective("val_<metric>", direction)``):

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
=================== ========= ==================================================================

Generated samples are drawn with a fixed seed (``eval_seed``), so two trials with equal
generators get equal scores, and :func:`evaluate_objective` scores a trained run directory the
same way (for the toy sets it is exactly ``tfgan-app evaluate RUN --metrics frechet``).

**Default search space** (:meth:`GANHyperModel.search_space`; ``p`` is the preset's value).
Every hyperparameter's default is the preset's value, so hyperparameters that are not tuned
(``tune=`` or ``tune_new_entries=False``) keep the preset's setting:

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
``latent_dim``       Choice ``p/2, p, 2p``             ``latent_dim``
``g_width``          Choice ``p/2, p, 2p``             generator width: ``hidden_units`` (mlp: the
                                                       first layer's units, the others scaled in
                                                       proportion) or ``base_filters`` (dcgan,
                                                       conditional_dcgan); absent for ``toy``
``d_width``          same                              discriminator width
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

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import math
import numbers
import os
import socket
import sys
import time

import keras
import keras_tuner as kt
import numpy as np

from tfgan_app import presets

__all__ = [
    "OBJECTIVES",
    "LOSS_CHOICES",
    "TUNERS",
    "GANHyperModel",
    "make_tuner",
    "search",
    "load_trials",
    "best_trial",
    "write_best",
    "format_trials",
    "evaluate_objective",
    "add_tune_parser",
]

# objective name -> (Evaluator metric that computes it, direction, data kinds)
OBJECTIVES = {
    "frechet": ("frechet", "min", ("points",)),
    "modes_captured": ("mode_coverage", "max", ("points",)),
    "high_quality": ("mode_coverage", "max", ("points",)),
    "fid": ("fid", "min", ("images",)),
    "kid": ("kid", "min", ("images", "points")),
    "precision": ("precision_recall", "max", ("images", "points")),
    "recall": ("precision_recall", "max", ("images", "points")),
    "density": ("density_coverage", "max", ("images", "points")),
    "coverage": ("density_coverage", "max", ("images", "points")),
    "is": ("is", "max", ("images",)),
    "class_coverage": ("class_coverage", "max", ("images",)),
    "swd": ("swd", "min", ("images",)),
}

LOSS_CHOICES = ("modified", "least_squares", "wasserstein", "wasserstein_hinge")
TUNERS = ("random", "bayesian", "hyperband", "grid")
DEFAULT_SPACE = ("d_lr", "g_lr", "beta_1", "d_steps", "loss", "gradient_penalty",
                 "latent_dim", "g_width", "d_width")
# builder name -> the keyword that sets its width (None: not tunable)
WIDTH_KEYS = {"toy": None, "mlp": "hidden_units", "dcgan": "base_filters",
              "conditional_dcgan": "base_filters"}
RUNS_FILE = "trial_runs.jsonl"
SEARCH_FILE = "search.json"


# ----------------------------------------------------------------------------- helpers

def _data_kind(settings: dict) -> str:
    from tfgan_app.data.toy import TOY_DISTRIBUTIONS

    return "points" if settings["dataset"] in TOY_DISTRIBUTIONS else "images"


def _objective_key(objective) -> str:
    key = str(objective)
    if key.startswith("val_"):
        key = key[4:]
    if key not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; valid objectives: "
                         f"{', '.join(sorted(OBJECTIVES))} (optionally prefixed 'val_')")
    return key


def default_objective(settings: dict) -> str:
    """``"frechet"`` for the toy 2-D sets, ``"fid"`` for images."""
    return "frechet" if _data_kind(settings) == "points" else "fid"


def _width_default(builder: str, role: str, key: str):
    from tfgan_app import builders

    fn = {("mlp", "generator"): builders.mlp_generator,
          ("mlp", "discriminator"): builders.mlp_discriminator,
          ("dcgan", "generator"): builders.dcgan_generator,
          ("dcgan", "discriminator"): builders.dcgan_discriminator,
          ("conditional_dcgan", "generator"): builders.conditional_dcgan_generator,
          ("conditional_dcgan", "discriminator"): builders.conditional_dcgan_discriminator,
          }[(builder, role)]
    return inspect.signature(fn).parameters[key].default


def _width_of(spec: dict, role: str):
    """``(width_key, current width)`` of a builder spec, or ``(None, None)``."""
    builder = spec.get("builder")
    key = WIDTH_KEYS.get(builder)
    if key is None:
        return None, None
    value = spec.get(key, _width_default(builder, role, key))
    if key == "hidden_units":
        units = list(value)
        return key, int(units[0]) if units else None
    return key, int(value)


def _with_width(spec: dict, role: str, width: int) -> dict:
    spec = copy.deepcopy(spec)
    key, current = _width_of(spec, role)
    if key is None:
        raise ValueError(f"the {spec.get('builder')!r} {role} has no width to tune")
    width = int(width)
    if width == current:
        return spec  # unchanged (also when the spec relies on the builder's default)
    if key == "hidden_units":
        units = list(spec.get(key, _width_default(spec["builder"], role, key)))
        spec[key] = [max(1, int(round(u * width / current))) for u in units]
    else:
        spec[key] = width
    return spec


def _around(p: int) -> list[int]:
    p = int(p)
    return sorted({max(1, p // 2), p, 2 * p})


def _with(values, p) -> list:
    return sorted(set(values) | {p})


def _loss_options_for(loss: str, options: dict) -> dict:
    """The subset of ``options`` that loss ``loss`` accepts."""
    from tfgan_app import losses

    accepted = set(losses.get(loss).options)
    return {k: v for k, v in (options or {}).items() if k in accepted}


def _resolve(preset: str, overrides=None) -> dict:
    """The settings ``tfgan-app train --preset PRESET`` resolves, with ``overrides`` (a dict
    as from ``--config``, or ``key=value`` strings as from ``--set``)."""
    from tfgan_app import train

    if isinstance(overrides, dict):
        return train.resolve_settings(preset, config=overrides)
    return train.resolve_settings(preset, overrides=list(overrides or []))


def _settings_diff(settings: dict, reference: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in settings.items()
            if k != "preset" and reference.get(k, object()) != v}


def _finite(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


class _NonFiniteLosses(keras.callbacks.Callback):
    """Stops ``fit`` at the first epoch whose logged losses are NaN or infinite."""

    def __init__(self):
        super().__init__()
        self.bad = None

    def on_epoch_end(self, epoch, logs=None):
        bad = {k: v for k, v in (logs or {}).items()
               if isinstance(v, numbers.Real) and not math.isfinite(float(v))}
        if bad and self.bad is None:
            self.bad = (epoch, bad)
            self.model.stop_training = True


# ----------------------------------------------------------------------------- evaluation

def make_evaluator(data_info: dict, objective: str, num_samples: int | None = None,
                   cache_dir: str | None = None):
    """The :class:`~tfgan_app.evaluation.Evaluator` that scores ``objective`` for a run's data
    (``config["data"]``, i.e. :func:`tfgan_app.train.make_dataset`'s ``info``).

    Points: the toy spec's exact samples (reference seed 1), ``num_samples`` generated points
    (default 2,500). Images: the dataset's held-out split is the reference, features from the
    offline classifier trained on the training split (cached), ``num_samples`` defaulting to
    the held-out size.

    Raises:
      ValueError: unknown objective, or one that does not apply to the data kind.
    """
    from tfgan_app.evaluation import Evaluator, RealImages, real_images
    from tfgan_app.evaluation.evaluator import _is_point_spec
    from tfgan_app.evaluation.extractors import classifier_extractor, dataset_classifier

    key = _objective_key(objective)
    metric, _, kinds = OBJECTIVES[key]
    data_info = {k: v for k, v in data_info.items() if k != "points"}
    kind = "points" if _is_point_spec(data_info) else "images"
    if kind not in kinds:
        raise ValueError(f"objective {key!r} does not apply to {kind} data; valid: "
                         f"{', '.join(k for k, v in OBJECTIVES.items() if kind in v[2])}")
    if kind == "points":
        return Evaluator(data_info, metrics=[metric], num_samples=num_samples)
    real = real_images(data_info)
    model, cinfo = dataset_classifier(real, cache_dir=cache_dir)
    extractor = classifier_extractor(model, cinfo)
    if real.heldout is not None:
        real = RealImages(real.name, real.heldout, real.heldout_labels, None, None,
                          real.num_classes, f"held-out split of {real.name} as the reference")
    return Evaluator(real, metrics=[metric], extractor=extractor,
                     num_samples=num_samples or len(real.reference), cache_dir=cache_dir)


def _score(evaluator, generator, latent_dim, num_classes, seed) -> dict:
    """Scalar metrics of a generator ``keras.Model``, prefixed ``val_``."""
    from tfgan_app.evaluation.extractors import as_sampler

    sampler = as_sampler(generator, latent_dim=latent_dim, num_classes=num_classes)
    res = evaluator.evaluate(sampler, seed=seed)
    return {"val_" + k: float(v) for k, v in res.items()
            if isinstance(v, numbers.Real) and not isinstance(v, bool)}


def evaluate_objective(run_dir: str, objective: str | None = None,
                       num_samples: int | None = None, seed: int = 0,
                       cache_dir: str | None = None) -> dict:
    """Score a run directory written by ``tfgan-app train`` exactly as a search trial is
    scored (same evaluator, sample count and sampling seed).

    Uses ``RUN_DIR/ema_generator.keras`` when present (what ``GANModel.generate`` samples
    from), else ``generator.keras``.

    Returns:
      ``{"val_<metric>": float, ...}`` (e.g. ``{"val_frechet": 0.05}``).
    """
    from tfgan_app.utils import read_json

    config = read_json(os.path.join(run_dir, "config.json"))
    objective = objective or default_objective(config)
    path = os.path.join(run_dir, "ema_generator.keras")
    if not os.path.exists(path):
        path = os.path.join(run_dir, "generator.keras")
    import tfgan_app.builders  # noqa: F401  (registers custom layers)

    generator = keras.saving.load_model(path, compile=False)
    ev = make_evaluator(config["data"], objective, num_samples, cache_dir)
    return _score(ev, generator, config["latent_dim"], config.get("num_classes"), seed)


# ----------------------------------------------------------------------------- hypermodel

class GANHyperModel(kt.HyperModel):
    """A keras-tuner ``HyperModel`` for a training preset.

    ``build(hp)`` resolves the preset's settings with the hyperparameters (see the module
    docstring for the default space and how names map onto settings), seeds Keras with the
    settings' ``seed`` and builds the dataset and the compiled :class:`~tfgan_app.GANModel`
    exactly as :func:`tfgan_app.train.train` does, so ``tfgan-app train --config best.json``
    reproduces a trial. ``fit(hp, model)`` trains for the settings' ``epochs`` (or the
    ``epochs`` / ``initial_epoch`` a tuner passes, e.g. Hyperband), then scores the generator
    and returns ``{"val_<metric>": value, ...}``.

    Args:
      preset: preset name (see ``tfgan-app presets``).
      overrides: settings applied to the preset before the search (dict, or ``key=value``
        strings as for ``--set``), e.g. ``{"epochs": 5}``.
      objective: objective name (see :data:`OBJECTIVES`; default ``frechet`` for toy sets,
        ``fid`` for images). ``self.objective`` is the matching ``kt.Objective``.
      tune: which default hyperparameters to declare (default: all that apply to the preset).
      num_samples: generated samples per evaluation (default: see :func:`make_evaluator`).
      eval_seed: sampling seed of every evaluation.
      fit_verbose: ``verbose`` of each trial's ``fit``.
      cache_dir: offline classifier cache (images).
      run_log: write one JSON line per trial run to ``PROJECT_DIR/trial_runs.jsonl``
        (trial id, tuner id, pid, host, status, objective, seconds).
    """

    def __init__(self, preset: str, overrides=None, objective: str | None = None, tune=None,
                 num_samples: int | None = None, eval_seed: int = 0, fit_verbose: int = 0,
                 cache_dir: str | None = None, run_log: bool = True, name=None, tunable=True):
        super().__init__(name=name or f"gan_{preset}", tunable=tunable)
        self.preset = preset
        self.preset_settings = _resolve(preset)
        self.base_settings = _resolve(preset, overrides)
        self.kind = _data_kind(self.base_settings)
        key = _objective_key(objective or default_objective(self.base_settings))
        if self.kind not in OBJECTIVES[key][2]:
            raise ValueError(f"objective {key!r} does not apply to {self.kind} data "
                             f"(preset {preset!r}); valid: "
                             f"{', '.join(k for k, v in OBJECTIVES.items() if self.kind in v[2])}")
        self.objective_key = key
        self.objective = kt.Objective("val_" + key, OBJECTIVES[key][1])
        space = self.search_space()
        if tune is None:
            tune = tuple(space)
        elif isinstance(tune, str):
            tune = tuple(t.strip() for t in tune.split(",") if t.strip())
        bad = [t for t in tune if t not in space]
        if bad:
            raise ValueError(f"cannot tune {bad} for preset {preset!r}; the default space "
                             f"has {', '.join(space)}")
        self.tune = tuple(tune)
        self.num_samples = num_samples
        self.eval_seed = int(eval_seed)
        self.fit_verbose = fit_verbose
        self.cache_dir = cache_dir
        self.run_log = run_log
        self._evaluator = None
        self._last = None  # (model, settings, dataset, info) from the latest build

    # -- the space
    def search_space(self) -> dict:
        """The default hyperparameters that apply to this preset: ``{name: (kind, kwargs)}``
        with ``kind`` one of ``"float"``, ``"choice"``; every default is the preset's value
        (after ``overrides``)."""
        s = self.base_settings
        space = {}
        for name in ("d_lr", "g_lr"):
            p = float(s[name])
            space[name] = ("float", dict(min_value=p / 10, max_value=p * 10, sampling="log",
                                         default=p))
        space["beta_1"] = ("choice", dict(values=_with([0.0, 0.5, 0.9], float(s["beta_1"])),
                                          default=float(s["beta_1"])))
        space["d_steps"] = ("choice", dict(values=_with([1, 2, 5], int(s["d_steps"])),
                                           default=int(s["d_steps"])))
        if s["loss"] != "acgan":
            values = list(LOSS_CHOICES) + ([s["loss"]] if s["loss"] not in LOSS_CHOICES else [])
            space["loss"] = ("choice", dict(values=values, default=s["loss"]))
        gp = float(s["gradient_penalty"])
        space["gradient_penalty"] = ("choice", dict(values=_with([0.0, 1.0, 10.0], gp),
                                                    default=gp))
        space["latent_dim"] = ("choice", dict(values=_around(s["latent_dim"]),
                                              default=int(s["latent_dim"])))
        for name, role in (("g_width", "generator"), ("d_width", "discriminator")):
            key, width = _width_of(s[role], role)
            if key is not None and width:
                space[name] = ("choice", dict(values=_around(width), default=width))
        return space

    def declare_hyperparameters(self, hp):
        """Declare the tuned default hyperparameters on ``hp`` (names declared there before
        keep their definition); returns ``{name: value}``."""
        space = self.search_space()
        values = {}
        for name in self.tune:
            kind, kw = space[name]
            if kind == "float":
                values[name] = hp.Float(name, **kw)
            else:
                values[name] = hp.Choice(name, **kw)
        return values

    def _values(self, hp) -> dict:
        values = {k: v for k, v in hp.values.items() if not k.startswith("tuner/")}
        values.update(self.declare_hyperparameters(hp))
        return values

    # -- mapping onto settings
    def settings_for(self, values) -> dict:
        """The full settings for hyperparameter ``values`` (a dict or ``kt.HyperParameters``).

        Raises:
          ValueError: a name that is neither in the default space nor a settings key.
        """
        if isinstance(values, kt.HyperParameters):
            values = values.values
        s = copy.deepcopy(self.base_settings)
        extra = {}
        for name, v in values.items():
            if name.startswith("tuner/"):
                continue
            if name in ("d_lr", "g_lr", "beta_1", "gradient_penalty"):
                s[name] = float(v)
            elif name in ("d_steps", "latent_dim"):
                s[name] = int(v)
            elif name == "loss":
                s["loss"] = str(v)
                s["loss_options"] = _loss_options_for(str(v), s.get("loss_options"))
            elif name in ("g_width", "d_width"):
                role = "generator" if name == "g_width" else "discriminator"
                s[role] = _with_width(s[role], role, v)
            elif name.split(".")[0] in s:
                extra[name] = v
            else:
                raise ValueError(f"hyperparameter {name!r} is neither in the default search "
                                 f"space ({', '.join(DEFAULT_SPACE)}) nor a settings key")
        if extra:
            s = presets.apply_overrides(s, extra)
        return s

    def overrides_for(self, values) -> dict:
        """Settings overrides (relative to the preset) that reproduce a trial:
        ``tfgan-app train --preset PRESET --config F`` with ``F = {"settings": <this>}``.
        Includes the search's own ``overrides`` (e.g. ``epochs``). Hyperband's
        ``tuner/epochs`` becomes ``epochs``."""
        if isinstance(values, kt.HyperParameters):
            values = values.values
        s = self.settings_for(values)
        if "tuner/epochs" in values:
            s["epochs"] = int(values["tuner/epochs"])
        return _settings_diff(s, self.preset_settings)

    # -- keras-tuner API
    def build(self, hp):
        from tfgan_app import train

        settings = self.settings_for(self._values(hp))
        keras.utils.set_random_seed(int(settings["seed"]))  # same order as train.train
        ds, info = train.make_dataset(settings)
        gan = train.build_gan(settings, info)
        self._last = (gan, settings, ds, info)
        return gan

    def _evaluator_for(self, info):
        data = {k: v for k, v in info.items() if k != "points"}
        key = json.dumps(data, sort_keys=True, default=str)
        if self._evaluator is None or self._evaluator[0] != key:
            self._evaluator = (key, make_evaluator(data, self.objective_key, self.num_samples,
                                                   self.cache_dir))
        return self._evaluator[1]

    def evaluate(self, gan, info) -> dict:
        """Score a trained ``GANModel`` (its sampling generator: the EMA copy when enabled):
        ``{"val_<metric>": value, ...}``."""
        ev = self._evaluator_for(info)
        return _score(ev, gan.sampling_generator, gan.latent_dim, gan.num_classes,
                      self.eval_seed)

    def fit(self, hp, model, *args, callbacks=None, epochs=None, initial_epoch=0,
            verbose=None, **kwargs):
        """Train ``model`` (built by :meth:`build`) and return its held-out metrics.

        ``fit``'s progress display is ``self.fit_verbose``; the ``verbose`` that
        ``tuner.search(verbose=...)`` forwards here is keras-tuner's trial display and is not
        used for ``fit``.

        Raises:
          keras_tuner.errors.FailedTrialError: non-finite losses, samples or objective.
        """
        from tfgan_app import train

        callbacks = list(callbacks or [])
        values = self._values(hp)
        if self._last is not None and self._last[0] is model:
            _, settings, ds, info = self._last
        else:
            settings = self.settings_for(values)
            ds, info = train.make_dataset(settings)
        epochs = int(epochs if epochs is not None else settings["epochs"])
        trial_id, tuner_id, project_dir = None, os.environ.get("KERASTUNER_TUNER_ID",
                                                               "tuner0"), None
        for cb in callbacks:  # keras-tuner's TunerCallback knows the trial and the tuner
            if hasattr(cb, "trial") and hasattr(cb, "tuner"):
                trial_id = cb.trial.trial_id
                tuner_id = getattr(cb.tuner, "tuner_id", tuner_id)
                project_dir = getattr(cb.tuner, "project_dir", None)
        guard = _NonFiniteLosses()
        t0 = time.time()
        record = {"trial_id": trial_id, "tuner_id": tuner_id, "pid": os.getpid(),
                  "host": socket.gethostname(), "epochs": epochs,
                  "initial_epoch": int(initial_epoch or 0),
                  "settings": self.overrides_for(hp.values)}
        try:
            model.fit(ds, epochs=epochs, initial_epoch=int(initial_epoch or 0),
                      verbose=self.fit_verbose,
                      callbacks=[guard, *callbacks], shuffle=False)
            if guard.bad is not None:
                epoch, bad = guard.bad
                raise kt.errors.FailedTrialError(
                    f"non-finite training losses at epoch {epoch}: "
                    + ", ".join(f"{k}={v}" for k, v in sorted(bad.items())))
            try:
                metrics = self.evaluate(model, info)
            except ValueError as e:  # the evaluator rejects NaN/inf samples
                raise kt.errors.FailedTrialError(f"evaluation failed: {e}") from None
            value = metrics.get(self.objective.name)
            if not _finite(value):
                raise kt.errors.FailedTrialError(
                    f"objective {self.objective.name} is not finite: {value}")
            record.update(status="COMPLETED", objective=value)
            return metrics
        except kt.errors.FailedTrialError as e:
            record.update(status="FAILED", message=str(e))
            raise
        except Exception as e:
            record.update(status="ERROR", message=f"{type(e).__name__}: {e}")
            raise
        finally:
            record["seconds"] = round(time.time() - t0, 3)
            if self.run_log and project_dir:
                _append_line(os.path.join(project_dir, RUNS_FILE), record)


def _append_line(path, record):
    line = (json.dumps(record, default=_json_default) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write on an O_APPEND file: lines from workers do not mix
    finally:
        os.close(fd)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ----------------------------------------------------------------------------- tuners

def make_tuner(hypermodel: GANHyperModel, tuner: str = "random", max_trials: int = 10, *,
               directory: str = "tuning", project_name: str | None = None,
               overwrite: bool = False, seed: int | None = 0, hyperparameters=None,
               tune_new_entries: bool = True, allow_new_entries: bool = True,
               max_consecutive_failed_trials: int = 3, max_epochs: int | None = None,
               factor: int = 3, **kwargs):
    """A keras-tuner tuner for ``hypermodel`` with its objective.

    Args:
      tuner: ``"random"`` (``kt.RandomSearch``), ``"bayesian"`` (``kt.BayesianOptimization``),
        ``"hyperband"`` (``kt.Hyperband``; ``max_epochs`` defaults to the settings' epochs,
        ``max_trials`` caps its brackets) or ``"grid"`` (``kt.GridSearch``, for Choice-only
        spaces).
      max_trials: total number of trials (a resumed search counts the earlier ones).
      directory, project_name: trials go to ``directory/project_name/trial_<id>/``.
      overwrite: start again (``True``) or reload an existing search (``False``).
      seed: the search's seed (``None``: random). The oracle gets ``seed + 1``: keras-tuner
        replaces a falsy seed by a random one (``Oracle``: ``seed or random.randint(...)``),
        so seed 0 would otherwise draw different trials on every run.
      hyperparameters, tune_new_entries, allow_new_entries: narrow or extend the space (see
        the module docstring).
      max_consecutive_failed_trials: stop the search after that many failures in a row.
      **kwargs: passed to the tuner (e.g. ``num_initial_points`` for ``bayesian``).
    """
    if tuner not in TUNERS:
        raise ValueError(f"unknown tuner {tuner!r}; valid tuners: {', '.join(TUNERS)}")
    oracle_seed = None if seed is None else int(seed) + 1
    common = dict(objective=hypermodel.objective, seed=oracle_seed,
                  hyperparameters=hyperparameters,
                  tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries,
                  max_consecutive_failed_trials=max_consecutive_failed_trials,
                  directory=directory, project_name=project_name or hypermodel.preset,
                  overwrite=overwrite, **kwargs)
    if tuner == "random":
        return kt.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if tuner == "bayesian":
        return kt.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    if tuner == "grid":
        return kt.GridSearch(hypermodel, max_trials=max_trials, **common)
    t = kt.Hyperband(hypermodel, max_epochs=int(max_epochs or hypermodel.base_settings["epochs"]),
                     factor=factor, **common)
    if max_trials:
        t.oracle.max_trials = int(max_trials)  # honoured by Oracle.create_trial
    return t


@contextlib.contextmanager
def _environ(values: dict):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def distributed_env(role: str, oracle_address: str, tuner_id: str | None = None) -> dict:
    """The ``KERASTUNER_*`` variables for a chief (``role="chief"``) or a worker.

    ``oracle_address`` is ``HOST:PORT`` (the chief listens there). Worker ids must not contain
    ``chief`` (keras-tuner tells the chief by that substring); the chief's id is ``chief``.
    """
    host, sep, port = str(oracle_address).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--oracle-address must be HOST:PORT, got {oracle_address!r}")
    if role == "chief":
        tid = tuner_id or "chief"
        if "chief" not in tid:
            raise ValueError(f"the chief's tuner id must contain 'chief', got {tid!r}")
    elif role == "worker":
        tid = tuner_id or "tuner0"
        if "chief" in tid:
            raise ValueError(f"a worker's tuner id must not contain 'chief', got {tid!r}")
    else:
        raise ValueError(f"role must be 'chief' or 'worker', got {role!r}")
    return {"KERASTUNER_TUNER_ID": tid, "KERASTUNER_ORACLE_IP": host,
            "KERASTUNER_ORACLE_PORT": port}


def search(preset: str, tuner: str = "random", max_trials: int = 10, out: str | None = None,
           *, resume: bool = False, overwrite: bool = False, epochs: int | None = None,
           overrides=None, objective: str | None = None, tune=None, seed: int | None = 0,
           distributed: str | None = None, oracle_address: str | None = None,
           tuner_id: str | None = None, hyperparameters=None, tune_new_entries: bool = True,
           max_consecutive_failed_trials: int = 3, num_samples: int | None = None,
           verbose: int = 0, fit_verbose: int = 0, **tuner_kwargs) -> dict:
    """Run (or resume, or join) a search; what ``tfgan-app tune`` does.

    Writes into ``out`` (default ``tuning/<preset>``): keras-tuner's ``oracle.json`` and
    ``trial_<id>/trial.json`` (+ checkpoints), ``trial_runs.jsonl`` (who ran what),
    ``search.json`` (the search's arguments), and -- except on workers -- ``trials.json``
    (the table) and ``best.json`` (see :func:`write_best`).

    Args:
      resume: continue the search in ``out`` (keras-tuner ``overwrite=False``); the preset,
        objective, tuner and overrides must match the stored ``search.json``.
      overwrite: replace an existing search in ``out``. Without ``resume`` or ``overwrite``
        an existing search is an error, and a non-empty ``out`` that holds no search is
        never deleted.
      epochs: shorthand for ``overrides["epochs"]`` (and Hyperband's ``max_epochs``).
      distributed: ``None``, ``"chief"`` or ``"worker"`` (with ``oracle_address`` and, for
        workers, ``tuner_id``); see the module docstring.
      Others: see :class:`GANHyperModel` and :func:`make_tuner`.

    Returns:
      ``{"out_dir", "role", "tuner", "hypermodel", "trials": [row, ...], "best": dict or None}``
      where rows are :func:`load_trials` rows (workers: the trials they ran).
    """
    out = os.path.abspath(out or os.path.join("tuning", preset))
    overrides = _settings_diff(_resolve(preset, overrides), _resolve(preset))
    if epochs is not None:
        overrides["epochs"] = int(epochs)
    objective = _objective_key(objective or default_objective(
        _resolve(preset, overrides)))
    role = distributed or "local"
    env = distributed_env(distributed, oracle_address, tuner_id) if distributed else {}
    meta = {"preset": preset, "objective": objective, "tuner": tuner, "overrides": overrides,
            "tune": None if tune is None else list(tune if not isinstance(tune, str)
                                                   else tune.split(",")),
            "max_trials": max_trials, "seed": seed}
    meta_path = os.path.join(out, SEARCH_FILE)
    exists = os.path.exists(os.path.join(out, "oracle.json")) or os.path.exists(meta_path)
    if role == "worker":
        overwrite_dir = False
    else:
        if exists and not (resume or overwrite):
            raise ValueError(f"{out} already holds a search: pass --resume to continue it or "
                             "--overwrite to start again")
        if not exists and os.path.isdir(out) and os.listdir(out):
            raise ValueError(f"{out} is not empty and holds no search; choose another --out")
        if resume and os.path.exists(meta_path):
            _check_resume(meta, json.load(open(meta_path, encoding="utf-8")))
        overwrite_dir = bool(exists and overwrite and not resume)
    from tfgan_app.utils import write_json

    with _environ(env):
        hm = GANHyperModel(preset, overrides=overrides, objective=objective, tune=tune,
                           num_samples=num_samples, fit_verbose=fit_verbose)
        t = make_tuner(hm, tuner, max_trials, directory=os.path.dirname(out),
                       project_name=os.path.basename(out), overwrite=overwrite_dir, seed=seed,
                       hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
                       max_consecutive_failed_trials=max_consecutive_failed_trials,
                       **tuner_kwargs)
        if role != "worker":
            write_json(meta_path, meta)
        t.search(verbose=verbose)
    rows = load_trials(out)
    result = {"out_dir": out, "role": role, "tuner": t, "hypermodel": hm, "best": None}
    if role == "worker":
        mine = env["KERASTUNER_TUNER_ID"]
        ran = {r["trial_id"] for r in _read_runs(out) if r.get("tuner_id") == mine}
        result["trials"] = [r for r in rows if r["trial_id"] in ran]
        return result
    result["trials"] = rows
    write_json(os.path.join(out, "trials.json"), rows)
    best = best_trial(rows, hm.objective.direction)
    if best is not None:
        result["best"] = write_best(out, hm, best)
    return result


def _check_resume(meta, stored):
    for key in ("preset", "objective", "tuner", "overrides"):
        if stored.get(key) != meta[key]:
            raise ValueError(f"--resume: the search in this directory used {key}="
                             f"{stored.get(key)!r}, not {meta[key]!r}")


# ----------------------------------------------------------------------------- results

def _read_runs(out_dir) -> list[dict]:
    path = os.path.join(out_dir, RUNS_FILE)
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def load_trials(out_dir: str) -> list[dict]:
    """The trials of a search directory, from keras-tuner's ``trial_<id>/trial.json`` files
    (written by the oracle: on the chief in a distributed search) and ``trial_runs.jsonl``.

    Returns:
      rows sorted by trial id: ``{"trial_id", "status"`` (``COMPLETED``, ``FAILED``,
      ``INVALID``, ``RUNNING``), ``"score"`` (the objective or ``None``), ``"metrics"``
      (``{name: value}``), ``"hyperparameters"`` (``{name: value}``), ``"message"`` (the
      failure's last line, or ``None``), ``"tuner_id"``, ``"seconds"``,
      ``"runs"`` (how many times it was run)``}``.
    """
    runs = {}
    for r in _read_runs(out_dir):
        runs.setdefault(r.get("trial_id"), []).append(r)
    rows = []
    if not os.path.isdir(out_dir):
        return rows
    for name in sorted(os.listdir(out_dir)):
        path = os.path.join(out_dir, name, "trial.json")
        if not (name.startswith("trial_") and os.path.exists(path)):
            continue
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        metrics = {}
        for mname, m in (state.get("metrics") or {}).get("metrics", {}).items():
            obs = m.get("observations") or []
            if obs:
                v = obs[-1]["value"]
                metrics[mname] = v[0] if isinstance(v, list) and len(v) == 1 else v
        message = state.get("message")
        if message:
            lines = [ln for ln in message.strip().splitlines() if ln.strip()]
            message = lines[-1] if lines else message
        tid = state["trial_id"]
        mine = runs.get(tid, [])
        rows.append({
            "trial_id": tid, "status": state.get("status"), "score": state.get("score"),
            "metrics": metrics,
            "hyperparameters": (state.get("hyperparameters") or {}).get("values", {}),
            "message": message,
            "tuner_id": mine[-1]["tuner_id"] if mine else None,
            "seconds": mine[-1].get("seconds") if mine else None,
            "settings": mine[-1].get("settings") if mine else None,
            "runs": len(mine),
        })
    return rows


def best_trial(rows: list[dict], direction: str) -> dict | None:
    """The best ``COMPLETED`` row with a finite score (``None`` if there is none)."""
    done = [r for r in rows if r["status"] == "COMPLETED" and _finite(r["score"])]
    if not done:
        return None
    return (min if direction == "min" else max)(done, key=lambda r: r["score"])


def write_best(out_dir: str, hypermodel: GANHyperModel, row: dict) -> dict:
    """Write ``OUT_DIR/best.json`` for trial ``row`` and return it::

        {"preset", "objective": {"name", "direction"}, "value", "trial_id",
         "hyperparameters": {...}, "settings": {...overrides...}, "command"}

    ``tfgan-app train --preset PRESET --config best.json`` reads ``settings``.
    """
    from tfgan_app.utils import write_json

    path = os.path.join(out_dir, "best.json")
    best = {
        "preset": hypermodel.preset,
        "objective": {"name": hypermodel.objective.name,
                      "direction": hypermodel.objective.direction},
        "value": row["score"],
        "trial_id": row["trial_id"],
        "hyperparameters": row["hyperparameters"],
        "settings": hypermodel.overrides_for(row["hyperparameters"]),
        "command": f"tfgan-app train --preset {hypermodel.preset} --config {path}",
    }
    write_json(path, best)
    return best


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, numbers.Real):
        return f"{v:.4g}"
    return str(v)


def format_trials(rows: list[dict], objective_name: str | None = None,
                  best_id: str | None = None, max_message: int = 60) -> str:
    """A plain-text table: trial, status, objective, tuner, seconds, one column per
    hyperparameter (Hyperband's ``tuner/epochs`` as ``epochs``), failure message; ``*``
    marks the best trial."""
    hp_names = []
    for r in rows:
        for k in r["hyperparameters"]:
            if (not k.startswith("tuner/") or k == "tuner/epochs") and k not in hp_names:
                hp_names.append(k)
    obj = objective_name or "objective"
    head = ["trial", "status", obj, "tuner", "s"] + [
        "epochs" if k == "tuner/epochs" else k for k in hp_names]
    table = [head]
    notes = []
    for r in rows:
        mark = "*" if r["trial_id"] == best_id else " "
        table.append([mark + r["trial_id"], r["status"] or "-", _fmt(r["score"]),
                      r["tuner_id"] or "-", _fmt(r["seconds"])]
                     + [_fmt(r["hyperparameters"].get(k)) for k in hp_names])
        if r.get("message") and r["status"] != "COMPLETED":
            notes.append(f"  trial {r['trial_id']}: {r['message'][:max_message]}")
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip()
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + notes)


# ----------------------------------------------------------------------------- CLI

def add_tune_parser(subparsers):
    """Add the ``tune`` subcommand to ``tfgan-app``'s argparse ``subparsers``."""
    p = subparsers.add_parser(
        "tune", help="hyperparameter search with keras-tuner (writes best.json for train)",
        description="Search a preset's hyperparameters with keras-tuner; every trial is scored "
                    "on held-out data (see tfgan_app.tuning). Prints a table of trials and "
                    "writes OUT/best.json, which `tfgan-app train --preset NAME --config "
                    "OUT/best.json` accepts.")
    p.add_argument("--preset", required=True, help="preset name (see `tfgan-app presets`)")
    p.add_argument("--tuner", choices=TUNERS, default="random")
    p.add_argument("--max-trials", type=int, default=10,
                   help="total number of trials (with --resume: including earlier ones)")
    p.add_argument("--out", default=None, help="search directory (default tuning/<preset>)")
    p.add_argument("--resume", action="store_true", help="continue the search in --out")
    p.add_argument("--overwrite", action="store_true", help="replace the search in --out")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per trial (Hyperband: max epochs); default: the preset's")
    p.add_argument("--objective", default=None,
                   help=f"one of {', '.join(OBJECTIVES)} (default: frechet for toy sets, fid "
                        "for images)")
    p.add_argument("--tune", default=None, metavar="NAMES",
                   help=f"comma-separated default hyperparameters to tune (default: all of "
                        f"{', '.join(DEFAULT_SPACE)} that apply)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="override a setting for every trial")
    p.add_argument("--tuner-seed", type=int, default=0, help="the oracle's seed")
    p.add_argument("--num-samples", type=int, default=None,
                   help="generated samples per evaluation")
    p.add_argument("--max-consecutive-failures", type=int, default=3,
                   help="stop after this many failed trials in a row")
    p.add_argument("--distributed", choices=["chief", "worker"], default=None,
                   help="keras-tuner chief/worker mode (start the chief first)")
    p.add_argument("--oracle-address", default=None, metavar="HOST:PORT",
                   help="where the chief serves the oracle (with --distributed)")
    p.add_argument("--tuner-id", default=None,
                   help="worker id, e.g. tuner0, tuner1 (unique per worker)")
    p.add_argument("--verbose", type=int, default=1, choices=[0, 1],
                   help="keras-tuner's per-trial display (default 1)")
    p.set_defaults(func=_cmd_tune)
    return p


def _cmd_tune(args) -> int:
    if args.distributed and not args.oracle_address:
        raise ValueError("--distributed needs --oracle-address HOST:PORT")
    if args.tuner_id and not args.distributed:
        raise ValueError("--tuner-id is only used with --distributed")
    result = search(args.preset, tuner=args.tuner, max_trials=args.max_trials, out=args.out,
                    resume=args.resume, overwrite=args.overwrite, epochs=args.epochs,
                    overrides=args.overrides,
                    objective=args.objective, tune=args.tune, seed=args.tuner_seed,
                    distributed=args.distributed, oracle_address=args.oracle_address,
                    tuner_id=args.tuner_id, num_samples=args.num_samples,
                    max_consecutive_failed_trials=args.max_consecutive_failures,
                    verbose=args.verbose)
    hm = result["hypermodel"]
    best = result["best"]
    rows = result["trials"]
    print()
    if result["role"] == "worker":
        print(f"worker {args.tuner_id or 'tuner0'} ran {len(rows)} trial(s); results are kept "
              f"by the chief in {result['out_dir']}")
        print(format_trials(rows, hm.objective.name))
        return 0
    print(f"{len(rows)} trial(s) in {result['out_dir']} "
          f"(objective {hm.objective.name}, {hm.objective.direction})")
    print(format_trials(rows, hm.objective.name, best["trial_id"] if best else None))
    if best is None:
        print("no trial completed with a finite objective; no best.json written",
              file=sys.stderr)
        return 1
    print(f"best: trial {best['trial_id']} {hm.objective.name}={best['value']:.6g}")
    print(f"wrote {os.path.join(result['out_dir'], 'best.json')}; retrain with:")
    print(f"  {best['command']}")
    return 0
