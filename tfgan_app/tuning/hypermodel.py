""":class:`GANHyperModel`: a training preset as a keras-tuner ``HyperModel``."""

from __future__ import annotations

import json
import os
import socket
import time

import keras
import keras_tuner as kt

from tfgan_app import kinds
from tfgan_app.evaluation.objective import OBJECTIVES, make_evaluator, objective_key, score
from tfgan_app.tuning import results, space
from tfgan_app.utils import non_finite_logs

__all__ = ["GANHyperModel"]


class _NonFiniteLosses(keras.callbacks.Callback):
    """Stops ``fit`` at the first epoch whose logged losses are NaN or infinite."""

    def __init__(self):
        super().__init__()
        self.bad = None

    def on_epoch_end(self, epoch, logs=None):
        bad = non_finite_logs(logs)  # the one check, shared with training's TrainingGuard
        if bad and self.bad is None:
            self.bad = (epoch, bad)
            self.model.stop_training = True


def _trial_of(callbacks) -> tuple:
    """``(trial_id, tuner_id, project_dir)`` from keras-tuner's ``TunerCallback`` in
    ``callbacks`` (it knows the trial and the tuner); ``None`` where unknown."""
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
    for cb in callbacks:
        if hasattr(cb, "trial") and hasattr(cb, "tuner"):
            return (cb.trial.trial_id, getattr(cb.tuner, "tuner_id", tuner_id),
                    getattr(cb.tuner, "project_dir", None))
    return None, tuner_id, None


class GANHyperModel(kt.HyperModel):
    """A keras-tuner ``HyperModel`` for a training preset.

    ``build(hp)`` resolves the preset's settings with the hyperparameters (see
    :mod:`tfgan_app.tuning` for the default space and how names map onto settings), seeds
    Keras with the settings' ``seed`` and builds the dataset and the compiled
    :class:`~tfgan_app.GANModel` exactly as :func:`tfgan_app.train.train` does, so
    ``tfgan-app train --config best.json`` reproduces a trial. ``fit(hp, model)`` trains for
    the settings' ``epochs`` (or the ``epochs`` / ``initial_epoch`` a tuner passes, e.g.
    Hyperband), then scores the model's samples and returns ``{"val_<metric>": value, ...}``.

    Args:
      preset: preset name (see ``tfgan-app presets``).
      overrides: settings applied to the preset before the search (dict, or ``key=value``
        strings as for ``--set``), e.g. ``{"epochs": 5}``.
      objective: objective name (see :data:`tfgan_app.evaluation.objective.OBJECTIVES`;
        default: the data's kind's ``default_objective``, ``frechet`` for toy sets, ``fid``
        for images). ``self.objective`` is the matching ``kt.Objective``.
      tune: which default hyperparameters to declare (names, or one comma-separated string;
        default: all that apply to the preset).
      num_samples: generated samples per evaluation (default: see
        :func:`tfgan_app.evaluation.objective.make_evaluator`).
      eval_seed: sampling seed of every evaluation.
      fit_verbose: ``verbose`` of each trial's ``fit``.
      cache_dir: offline classifier cache (images).
      run_log: write one JSON line per trial run to ``PROJECT_DIR/trial_runs.jsonl``
        (trial id, tuner id, pid, host, status, objective, seconds).

    Raises:
      ValueError: an unknown preset, setting or objective, an objective that does not apply
        to the preset's data, or a ``tune`` name outside the preset's default space.
    """

    def __init__(self, preset: str, overrides=None, objective: str | None = None, tune=None,
                 num_samples: int | None = None, eval_seed: int = 0, fit_verbose: int = 0,
                 cache_dir: str | None = None, run_log: bool = True, name=None, tunable=True):
        super().__init__(name=name or f"gan_{preset}", tunable=tunable)
        self.preset = preset
        self.preset_settings = space.resolve(preset)
        self.base_settings = space.resolve(preset, overrides)
        self.kind = kinds.kind_of(self.base_settings["dataset"],
                                  num_classes=self.base_settings.get("num_classes"))
        try:
            key = objective_key(objective or self.kind.default_objective, self.kind)
        except ValueError as e:
            raise ValueError(f"{e} (preset {preset!r})") from None
        self.objective_key = key
        self.objective = kt.Objective("val_" + key, OBJECTIVES[key][1])
        default_space = self.search_space()
        if tune is None:
            tune = tuple(default_space)
        elif isinstance(tune, str):
            tune = tuple(t.strip() for t in tune.split(",") if t.strip())
        bad = [t for t in tune if t not in default_space]
        if bad:
            raise ValueError(f"cannot tune {bad} for preset {preset!r}; the default space "
                             f"has {', '.join(default_space)}")
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
        (after ``overrides``). See :func:`tfgan_app.tuning.space.search_space`."""
        return space.search_space(self.base_settings)

    def declare_hyperparameters(self, hp) -> dict:
        """Declare the tuned default hyperparameters on ``hp`` (names declared there before
        keep their definition); returns ``{name: value}``."""
        default_space = self.search_space()
        values = {}
        for name in self.tune:
            kind, kw = default_space[name]
            values[name] = hp.Float(name, **kw) if kind == "float" else hp.Choice(name, **kw)
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
        return space.apply_values(self.base_settings, values)

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
        return space.settings_diff(s, self.preset_settings)

    # -- keras-tuner API
    def build(self, hp):
        """The compiled ``GANModel`` for ``hp`` (Keras seeded first, as ``train.train``)."""
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
        """Score a trained ``GANModel`` through its ``generate`` (the EMA generator when
        enabled), as :func:`tfgan_app.evaluation.objective.evaluate_objective` scores the
        run directory: ``{"val_<metric>": float, ...}``. ``info`` is the data description."""
        return score(self._evaluator_for(info), gan, self.eval_seed)

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
        if self._last is not None and self._last[0] is model:
            _, settings, ds, info = self._last
        else:
            settings = self.settings_for(self._values(hp))
            ds, info = train.make_dataset(settings)
        epochs = int(epochs if epochs is not None else settings["epochs"])
        trial_id, tuner_id, project_dir = _trial_of(callbacks)
        guard = _NonFiniteLosses()
        t0 = time.time()
        record = {"trial_id": trial_id, "tuner_id": tuner_id, "pid": os.getpid(),
                  "host": socket.gethostname(), "epochs": epochs,
                  "initial_epoch": int(initial_epoch or 0),
                  "settings": self.overrides_for(hp.values)}
        try:
            model.fit(ds, epochs=epochs, initial_epoch=int(initial_epoch or 0),
                      verbose=self.fit_verbose, callbacks=[guard, *callbacks], shuffle=False)
            metrics = self._checked_metrics(model, info, guard)
            record.update(status="COMPLETED", objective=metrics[self.objective.name])
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
                results.append_run(project_dir, record)

    def _checked_metrics(self, model, info, guard) -> dict:
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
        if not results.is_finite(value):
            raise kt.errors.FailedTrialError(
                f"objective {self.objective.name} is not finite: {value}")
        return metrics
