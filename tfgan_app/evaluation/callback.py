"""``EvaluationCallback``: sample-quality metrics in the Keras logs during ``fit``."""

from __future__ import annotations

import numbers

import keras

from tfgan_app.evaluation.evaluator import Evaluator, kind_of_reference

__all__ = ["EvaluationCallback"]


class EvaluationCallback(keras.callbacks.Callback):
    """Evaluate the generator every ``every`` epochs and put the metrics into ``logs`` as
    ``val_fid``, ``val_kid``, ``val_is``, ``val_precision``, ... (``prefix`` + metric key), so
    that ``ModelCheckpoint(monitor="val_fid", mode="min")``, ``EarlyStopping`` and keras-tuner
    (``kt.Objective("val_fid", "min")``) can use them.

    Place it **before** ``ModelCheckpoint`` / ``EarlyStopping`` in the callbacks list: Keras
    calls callbacks in order, and they read the logs this one fills.

    Evaluation happens at the end of epochs ``every, 2*every, ...`` and at the last epoch.
    Between evaluations the last values are repeated in the logs (``carry_forward=True``), so
    monitors always find the key (a repeated value never counts as an improvement). Every
    evaluation uses the same seed, hence the same latent vectors: differences between epochs
    come from the generator, not from sampling noise.

    Args:
      real: the real data, anything :class:`~tfgan_app.evaluation.Evaluator` takes (a dataset
        name such as ``"digits"``, a ``RealImages``, an image array in ``[-1, 1]``, or a toy
        spec dict).
      every: evaluate every ``every`` epochs (positive int).
      metrics: metric names (default ``("fid", "kid")`` for images, the toy default for
        points).
      num_samples: generated samples per evaluation (default 1,000 for images, 2,500 points).
      extractor: feature extractor (default: the offline dataset classifier).
      sampler: what to sample from (default: the model being fitted, via its ``generate``).
      seed: sampling seed. prefix: log key prefix. carry_forward: see above.
      verbose: print the metrics after each evaluation.
      **evaluator_kwargs: passed to :class:`Evaluator` (``cache_dir``, ``batch_size``, ...).
    """

    def __init__(self, real, every: int = 1, metrics=None, num_samples: int | None = None,
                 extractor=None, sampler=None, seed: int = 0, prefix: str = "val_",
                 carry_forward: bool = True, verbose: int = 0, **evaluator_kwargs):
        super().__init__()
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer; got {every!r}")
        self.real, self.every, self.sampler, self.seed = real, every, sampler, seed
        self.prefix, self.carry_forward, self.verbose = prefix, carry_forward, verbose
        # what _build hands to Evaluator, with the callback's defaults filled in there
        self.evaluator_settings = {"metrics": metrics, "num_samples": num_samples,
                                   "extractor": extractor, **evaluator_kwargs}
        self.evaluator = None
        self.last: dict = {}
        self.history: list = []  # (epoch, metrics) per evaluation

    def _build(self):
        if self.evaluator is None:
            settings = dict(self.evaluator_settings)
            is_image = kind_of_reference(self.real).is_image
            if settings["metrics"] is None and is_image:
                settings["metrics"] = ("fid", "kid")
            settings["num_samples"] = settings["num_samples"] or (1000 if is_image else None)
            self.evaluator = Evaluator(self.real, seed=self.seed, **settings)
        return self.evaluator

    def on_train_begin(self, logs=None):
        self._build()  # fail early on bad settings; trains/loads the classifier once

    def evaluate_now(self) -> dict:
        """Evaluate the current generator; returns the prefixed scalar metrics."""
        ev = self._build()
        res = ev.evaluate(self.sampler if self.sampler is not None else self.model,
                          seed=self.seed)
        return {self.prefix + k: float(v) for k, v in res.items()
                if isinstance(v, numbers.Real) and not isinstance(v, bool)}

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        last_epoch = (self.params or {}).get("epochs")
        due = (epoch + 1) % self.every == 0 or (last_epoch is not None
                                                and epoch + 1 == last_epoch)
        if due:
            self.last = self.evaluate_now()
            self.history.append((epoch, dict(self.last)))
            if self.verbose:
                print(" - ".join(f"{k}: {v:.4g}" for k, v in self.last.items()))
            logs.update(self.last)
        elif self.carry_forward and self.last:
            logs.update(self.last)
