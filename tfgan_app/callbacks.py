"""Keras callbacks for watching a GAN train: pictures, curves and the run's history.

* :class:`TrainingGuard` -- stops ``fit`` at the first epoch with NaN or infinite losses or
  weights (:class:`tfgan_app.utils.NonFiniteError`) and warns when a loss diverges.
* :class:`HistoryWriter` -- ``history.json`` rewritten (atomically) after every epoch.
* :class:`LossCurves` -- ``plots/losses.png``: D and G losses (and D's outputs) per epoch.
* :class:`ScatterPlot` -- 2-D toy data: real against generated points, ``plots/scatter.png``.
* :class:`SampleGrid` -- image data: a PNG grid per epoch from fixed latent vectors (one row per
  class for conditional models), optionally also to TensorBoard.
* :class:`LatentInterpolation` -- a strip of images along a line between two latent points.

All files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import os
import sys

import keras
import numpy as np
from matplotlib.figure import Figure  # never pyplot: see tfgan_app.images

from tfgan_app.images import image_grid, plot_scatter, save_figure, save_png, to_uint8  # noqa: F401
from tfgan_app.sampling import latent_vectors
from tfgan_app.utils import NonFiniteError, non_finite_logs, non_finite_variables, write_json

#: A logged loss whose magnitude passes this is reported as diverging (README, "Reliability").
DIVERGENCE_WARNING = 1e6

#: What makes GAN training produce NaN or infinite values, most likely first (README,
#: "Reliability" and "Training failures and their remedies").
NON_FINITE_CAUSES = (
    "learning rates too high (d_lr, g_lr)",
    "a Wasserstein loss without weight_clip or gradient_penalty",
    "float16 overflow under mixed_float16",
    "NaN or inf in the training data",
)


def due(epoch: int, every: int, epochs: int | None) -> bool:
    """Whether work done "every ``every`` epochs and after the last" runs at the end of
    ``epoch``: the one schedule of the pictures, the plots and the resumable backups.

    Args:
      epoch: the epoch that just ended, 0-based (Keras' ``on_epoch_end`` argument), ``>= 0``.
      every: the period in epochs, an integer ``>= 1``.
      epochs: the number of epochs ``fit`` runs (``callback.params["epochs"]``); ``None`` or
        ``0`` when unknown, and then every epoch counts as possibly the last one.

    Returns:
      ``True`` after epochs ``every``, ``2 * every``, ... (1-based) and after epoch ``epochs``.

    Raises:
      ValueError: ``every`` below 1.
    """
    every = int(every)
    if every < 1:
        raise ValueError(f"every={every}: the period in epochs must be an integer >= 1")
    done = int(epoch) + 1
    return done % every == 0 or done >= int(epochs or 0)


def _due(callback, epoch) -> bool:
    """:func:`due` for a callback with an ``every`` attribute, inside ``fit``."""
    return due(epoch, callback.every, (callback.params or {}).get("epochs"))


def state_variables(model) -> list:
    """The variables of a model's training state: its weights (networks, EMA copy) and the
    variables of its optimizers (``optimizer``, ``d_optimizer``, ``g_optimizer``)."""
    out, seen = list(model.weights), set()
    for attr in ("optimizer", "d_optimizer", "g_optimizer"):
        opt = getattr(model, attr, None)
        if opt is not None and id(opt) not in seen:
            seen.add(id(opt))
            out.extend(opt.variables)
    return out


def _learning_rates(model) -> str:
    rates = []
    for attr in ("d_optimizer", "g_optimizer"):
        lr = getattr(getattr(model, attr, None), "learning_rate", None)
        try:
            rates.append(f"{attr[0]}_lr={float(np.asarray(lr)):.3g}")
        except (TypeError, ValueError):  # a schedule
            continue
    return f" ({', '.join(rates)})" if rates else ""


class TrainingGuard(keras.callbacks.Callback):
    """Stop training at the end of the first epoch whose losses or weights are not finite.

    At the end of every epoch the logged losses (keys not starting with ``val_``) and the
    whole training state (:func:`state_variables`) are checked; NaN or infinity raises
    :class:`tfgan_app.utils.NonFiniteError` at once, naming the epoch, the quantities and the
    likely causes, so nothing after it in the callback list (history, backup, pictures) records
    that epoch. A loss whose magnitude passes ``warn_above`` (default
    :data:`DIVERGENCE_WARNING`) prints one warning to stderr (kept in ``self.warning``): the
    run is most likely diverging although its values are still finite.
    """

    def __init__(self, warn_above: float = DIVERGENCE_WARNING):
        super().__init__()
        self.warn_above = float(warn_above)
        self.warning = None

    def on_epoch_end(self, epoch, logs=None):
        epochs = (self.params or {}).get("epochs")
        where = f"epoch {epoch + 1}" + (f"/{epochs}" if epochs else "")
        bad = non_finite_logs(logs, skip_prefix="val_")
        variables = non_finite_variables(state_variables(self.model))
        if bad or variables:
            what = [", ".join(f"{k}={v}" for k, v in sorted(bad.items()))] if bad else []
            if variables:
                shown = ", ".join(variables[:3]) + (", ..." if len(variables) > 3 else "")
                what.append(f"{len(variables)} weight or optimizer variable(s): {shown}")
            causes = list(NON_FINITE_CAUSES)
            causes[0] = causes[0].split(" (")[0] + _learning_rates(self.model)
            raise NonFiniteError(
                f"training stopped in {where}: non-finite values ({'; '.join(what)}). Likely "
                f"causes: "
                f"{'; '.join(causes)} (see the README's Reliability section)",
                epoch=epoch + 1, quantities=bad or dict.fromkeys(variables, float("nan")))
        if self.warning is None:
            big = {k: float(v) for k, v in (logs or {}).items()
                   if k.endswith("loss") and not k.startswith("val_")
                   and abs(float(v)) > self.warn_above}
            if big:
                self.warning = (
                    f"warning: {where}: {', '.join(f'{k}={v:.3g}' for k, v in sorted(big.items()))}"
                    f" (|loss| > {self.warn_above:g}): training is most likely diverging; "
                    f"learning rates too high{_learning_rates(self.model)}? (see the README's "
                    "Reliability section)")
                print(self.warning, file=sys.stderr, flush=True)


class HistoryWriter(keras.callbacks.Callback):
    """Rewrite ``path`` (``history.json``) after every epoch: ``{"epoch": [...], key: [...]}``.

    ``initial`` seeds it with the epochs of an earlier, resumed run.
    """

    def __init__(self, path: str, initial: dict | None = None):
        super().__init__()
        self.path = path
        self.history = {k: list(v) for k, v in (initial or {}).items()}

    def on_epoch_end(self, epoch, logs=None):
        epochs = self.history.setdefault("epoch", [])
        if epoch in epochs:  # a resumed run redoing an epoch: replace it
            idx = epochs.index(epoch)
            for k in self.history:
                del self.history[k][idx:]
            epochs = self.history["epoch"]
        epochs.append(int(epoch))
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(float(v))
        write_json(self.path, self.history)


def plot_history(history: dict, path: str, title: str = "GAN training") -> None:
    """Plot D/G losses and D's mean outputs per epoch from a history dict to ``path`` (PNG)."""
    epochs = np.asarray(history.get("epoch", range(len(history.get("d_loss", [])))))
    epochs = epochs + 1
    fig = Figure(figsize=(10, 3.6))
    panels = (((("d_loss", "discriminator"), ("g_loss", "generator")), "loss", "losses"),
              ((("d_real", "D(real)"), ("d_fake", "D(generated)")),
               "mean discriminator output", "discriminator outputs"))
    for ax, (curves, ylabel, panel_title) in zip(fig.subplots(1, 2), panels):
        for key, label in curves:
            if key in history:
                ax.plot(epochs, history[key], marker=".", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(panel_title)
        ax.legend()
    fig.suptitle(title)
    save_figure(fig, path)


class LossCurves(keras.callbacks.Callback):
    """Redraw the loss curves PNG (``plots/losses.png``) every ``every`` epochs and at the end."""

    def __init__(self, path: str, history: HistoryWriter, title: str = "GAN training",
                 every: int = 1):
        super().__init__()
        self.path, self.writer, self.title, self.every = path, history, title, max(1, every)

    def on_epoch_end(self, epoch, logs=None):
        if _due(self, epoch):
            plot_history(self.writer.history, self.path, self.title)


class ScatterPlot(keras.callbacks.Callback):
    """Redraw real against generated 2-D points every ``every`` epochs and at the end."""

    def __init__(self, path: str, real, n: int = 1000, seed: int = 0, every: int = 1,
                 modes=None):
        super().__init__()
        self.path, self.real, self.n, self.seed = path, np.asarray(real), n, seed
        self.every, self.modes = every, modes

    def on_epoch_end(self, epoch, logs=None):
        if _due(self, epoch):
            plot_scatter(self.real[:self.n], self.model.generate(self.n, seed=self.seed),
                         self.path, f"epoch {epoch + 1}", self.modes)


class SampleGrid(keras.callbacks.Callback):
    """A PNG grid of samples from fixed latent vectors: ``out_dir/epoch_XXXX.png`` every
    ``every`` epochs and after the last.

    Unconditional: ``n`` samples in a square-ish grid. Conditional: one row per class,
    ``per_class`` columns (the same latent vectors in every row). With ``tensorboard_dir`` the
    grid is also logged as an image summary ``samples``.
    """

    def __init__(self, out_dir: str, n: int = 64, seed: int = 1234, per_class: int = 10,
                 scale: int = 4, tensorboard_dir: str | None = None, every: int = 1):
        super().__init__()
        self.every = max(1, int(every))
        self.out_dir, self.n, self.seed, self.per_class = out_dir, n, seed, per_class
        self.scale, self.tensorboard_dir = scale, tensorboard_dir
        self._writer = None

    def samples(self):
        gan = self.model
        if gan.num_classes is None:
            return gan.generate(self.n, seed=self.seed), None
        k = gan.num_classes
        z = latent_vectors(self.per_class, gan.latent_dim, self.seed).numpy()
        z = np.tile(z, (k, 1))
        labels = np.repeat(np.arange(k), self.per_class).astype(np.int32)
        return np.asarray(gan.sampling_generator([z, labels], training=False)), k

    def on_epoch_end(self, epoch, logs=None):
        if not _due(self, epoch):
            return
        images, rows = self.samples()
        grid = image_grid(images, rows)
        save_png(grid, os.path.join(self.out_dir, f"epoch_{epoch + 1:04d}.png"), self.scale)
        if self.tensorboard_dir:
            import tensorflow as tf

            if self._writer is None:
                self._writer = tf.summary.create_file_writer(self.tensorboard_dir)
            with self._writer.as_default():
                tf.summary.image("samples", grid[None], step=epoch + 1)
            self._writer.flush()


def interpolation_strip(gan, seed_a: int = 0, seed_b: int = 1, steps: int = 10,
                        label: int | None = None) -> np.ndarray:
    """Images along the straight line between two latent points ``z(seed_a)`` and ``z(seed_b)``.

    Returns ``float32 [steps, H, W, C]`` in ``[-1, 1]``.
    """
    za = latent_vectors(1, gan.latent_dim, seed_a).numpy()
    zb = latent_vectors(1, gan.latent_dim, seed_b).numpy()
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    z = (1 - t) * za + t * zb
    if gan.num_classes is None:
        return np.asarray(gan.sampling_generator(z, training=False))
    labels = np.full((steps,), 0 if label is None else label, np.int32)
    return np.asarray(gan.sampling_generator([z, labels], training=False))


class LatentInterpolation(keras.callbacks.Callback):
    """At the end of training, write ``path``: a strip of images between two latent points."""

    def __init__(self, path: str, seed_a: int = 0, seed_b: int = 1, steps: int = 10,
                 scale: int = 4):
        super().__init__()
        self.path, self.seed_a, self.seed_b, self.steps, self.scale = (
            path, seed_a, seed_b, steps, scale)

    def on_train_end(self, logs=None):
        strip = interpolation_strip(self.model, self.seed_a, self.seed_b, self.steps)
        save_png(image_grid(strip, rows=1), self.path, self.scale)


def __getattr__(name):
    """``Doctor`` (the training doctor, :mod:`tfgan_app.doctor`), loaded on first use."""
    if name == "Doctor":
        from tfgan_app.doctor import Doctor

        return Doctor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
