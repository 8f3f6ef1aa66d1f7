"""Keras callbacks for watching a GAN train: pictures, curves and the run's history.

* :class:`TrainingGuard` -- stops ``fit`` at the first epoch with NaN or infinite losses or
  weights (:class:`tfgan_app.utils.NonFiniteError`) and warns when a loss diverges.
* :class:`HistoryWriter` -- ``history.json`` rewritten (atomically) after every epoch.
* :class:`LossCurves` -- ``plots/losses.png``: D and G losses (and D's outputs) per epoch.
* :class:`ScatterPlot` -- 2-D toy data: real against generated points, ``plots/scatter.png``.
* :class:`SampleGrid` -- image data: a PNG grid per epoch from fixed latent vectors (one row per
  class for conditional models), optionally also to TensorBoard.
* :class:`LatentInterpolation` -- a strip of images along a line between two latent points.

Bookkeeping costs a bounded share of a run (README, "Bookkeeping and resume"): a
:class:`Schedule` says when periodic work runs (every N epochs, at most every S seconds of wall
time, always after the last epoch); :class:`Scheduled` applies one to a group of picture
callbacks, :class:`ScheduledTensorBoard` to TensorBoard's scalars, ``HistoryWriter`` and
:class:`tfgan_app.checkpoint.RunBackup` take one. Inside :func:`background_writes` the drawing,
PNG encoding and JSON writing go to one worker thread (:func:`submit`), joined at every
backup and at the end.

All files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np

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


#: The wall clock of every :class:`Schedule` made without one.
clock = time.monotonic


def _now() -> float:
    return clock()


class Schedule:
    """When periodic bookkeeping runs: at the end of every ``every``-th epoch (:func:`due`),
    but not sooner than ``seconds`` of wall time after the last run (counted from
    :meth:`start`, the beginning of training), and always after the last epoch.

    A short-epoch run is then never dominated by its bookkeeping, while a run whose epochs
    take longer than ``seconds`` still gets it after every due epoch. ``seconds=0``: every due
    epoch. ``clock``: a function returning seconds (default: this module's :data:`clock`,
    ``time.monotonic``, looked up at each call so that tests can replace it).
    """

    def __init__(self, every: int = 1, seconds: float = 0.0, clock=None):
        self.every, self.seconds = max(1, int(every)), float(seconds)
        self.clock = clock or _now
        if self.seconds < 0:
            raise ValueError(f"seconds={seconds}: expected a number of seconds >= 0")
        self.last = None

    def start(self) -> None:
        """The beginning of training: the first run comes ``seconds`` later at the soonest."""
        self.last = self.clock()

    def __call__(self, epoch: int, epochs: int | None) -> bool:
        """Whether the work runs at the end of ``epoch`` (0-based) of ``epochs``; a ``True``
        answer restarts the clock."""
        if not due(epoch, self.every, epochs):
            return False
        now = self.clock()
        last_epoch = int(epoch) + 1 >= int(epochs or 0)
        if not last_epoch and self.last is not None and now - self.last < self.seconds:
            return False
        self.last = now
        return True


# ----------------------------------------------------------------- background writes

_writer = threading.local()  # .pool, .pending: set inside background_writes()


@contextlib.contextmanager
def background_writes():
    """Inside, :func:`submit` runs its work on one worker thread (in submission order) instead
    of the caller's; on exit every submitted write is finished (:func:`join`). An error of a
    background write is raised by the next :func:`join` (or on exit)."""
    if getattr(_writer, "pool", None) is not None:  # nested: the outer one joins
        yield
        return
    _writer.pool, _writer.pending = ThreadPoolExecutor(1, "tfgan-writer"), []
    try:
        yield
    except BaseException:
        _finish(raise_errors=False)  # the training error is the one to report
        raise
    else:
        _finish(raise_errors=True)


def _finish(raise_errors: bool) -> None:
    try:
        join() if raise_errors else _drain()
    finally:
        _writer.pool.shutdown(wait=True)
        _writer.pool = _writer.pending = None


def _drain() -> None:
    for f in _writer.pending or ():
        f.exception()
    if _writer.pending is not None:
        _writer.pending.clear()


def submit(fn, *args, **kwargs) -> None:
    """Run ``fn(*args, **kwargs)`` on the background writer inside :func:`background_writes`
    (pass it copies of whatever training changes), else at once on this thread. ``fn`` must
    write atomically (``tfgan_app.utils.atomic_path``: a reader never sees a partial file)."""
    pool = getattr(_writer, "pool", None)
    if pool is None:
        fn(*args, **kwargs)
        return
    _writer.pending = [f for f in _writer.pending if not f.done() or f.exception()]
    _writer.pending.append(pool.submit(fn, *args, **kwargs))


def join() -> None:
    """Wait for every write submitted so far; raise the first error one of them raised."""
    pending, _writer.pending = list(getattr(_writer, "pending", None) or ()), []
    errors = [e for e in (f.exception() for f in pending) if e is not None]
    if errors:
        raise errors[0]


class Scheduled(keras.callbacks.Callback):
    """Runs ``callbacks``' ``on_epoch_end`` only when ``schedule`` says so; every other hook
    (model, params, train begin and end, batches) is passed on unchanged.

    The callbacks keep their own epoch period (``every``, as :func:`due` schedules it); the
    schedule, built with the same period, adds the wall-time limit (:class:`Schedule`).
    """

    def __init__(self, callbacks, schedule: Schedule):
        super().__init__()
        self.callbacks, self.schedule = list(callbacks), schedule

    def set_model(self, model):
        super().set_model(model)
        for c in self.callbacks:
            c.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for c in self.callbacks:
            c.set_params(params)

    def on_train_begin(self, logs=None):
        self.schedule.start()
        for c in self.callbacks:
            c.on_train_begin(logs)

    def on_epoch_begin(self, epoch, logs=None):
        for c in self.callbacks:
            c.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.schedule(epoch, (self.params or {}).get("epochs")):
            for c in self.callbacks:
                c.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        for c in self.callbacks:
            c.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        for c in self.callbacks:
            c.on_train_batch_end(batch, logs)

    def on_train_end(self, logs=None):
        for c in self.callbacks:
            c.on_train_end(logs)


class ScheduledTensorBoard(keras.callbacks.TensorBoard):
    """``keras.callbacks.TensorBoard`` whose epoch scalars are kept in memory and written when
    ``schedule`` says so (and at the end), on the background writer: every epoch is still
    logged, in fewer writes, off the training thread. With ``update_freq="epoch"`` (the
    default) the per-batch hook is skipped after its first call (Keras would evaluate a scalar
    summary per logged value there that no writer records)."""

    def __init__(self, log_dir, schedule: Schedule, **kwargs):
        super().__init__(log_dir, **kwargs)
        self.schedule, self._buffered = schedule, []
        self._scalar_writers = {}  # the compiled writers of write_scalars, per writer and tags

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.schedule.start()

    def on_train_batch_end(self, batch, logs=None):
        if (self.update_freq != "epoch" or getattr(self, "_should_trace", False)
                or getattr(self, "_should_write_train_graph", False)):
            super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        # (Keras adds the learning rate, a training log, when the model has one optimizer)
        self._buffered.append((epoch, self._collect_learning_rate(dict(logs or {}))))
        if self.schedule(epoch, (self.params or {}).get("epochs")):
            self._flush()

    def _flush(self):
        buffered, self._buffered = self._buffered, []
        if buffered:
            submit(self._write, buffered)

    def _write(self, buffered):
        """The buffered epochs' scalars as Keras writes them (``epoch_<name>`` at step
        ``epoch``; ``val_`` logs to the validation writer without the prefix), each writer's
        in ONE graph call: Keras' eager ``tf.summary.scalar`` per value cost ~0.4 ms, ~5 ms of
        CPU per epoch of the d2l-gaussian preset on this thread -- which competes with
        training for the cores and the GIL."""
        for val, writer in ((False, self._train_writer), (True, self._val_writer)):
            rows = [(epoch, {k[4:] if val else k: v for k, v in logs.items()
                             if k.startswith("val_") == val}) for epoch, logs in buffered]
            write_scalars(writer, [(epoch, {f"epoch_{k}": v for k, v in logs.items()})
                                   for epoch, logs in rows if logs], self._scalar_writers)
        for epoch, _ in buffered:
            if self.histogram_freq and epoch % self.histogram_freq == 0:
                self._log_weights(epoch)
            if self.embeddings_freq and epoch % self.embeddings_freq == 0:
                self._log_embeddings(epoch)

    def on_train_end(self, logs=None):
        self._flush()
        join()  # the events are written before the writers close
        super().on_train_end(logs)


def write_scalars(writer, rows, cache: dict) -> None:
    """Write ``rows`` (``[(step, {tag: value})]``) to the summary ``writer`` in one graph call
    per set of tags (a ``tf.while_loop`` of ``tf.summary.scalar`` over the steps). ``cache``
    keeps the compiled calls; it must live no longer than ``writer`` (they capture it)."""
    import tensorflow as tf

    groups = {}
    for step, values in rows:
        groups.setdefault(tuple(sorted(values)), []).append((step, values))
    for tags, group in groups.items():
        fn = cache.get((id(writer), tags))
        if fn is None:
            # one trace per set of tags, whatever the number of rows (no retracing warnings)
            @tf.function(autograph=False, input_signature=[
                tf.TensorSpec([None], tf.int64), tf.TensorSpec([None, len(tags)], tf.float32)])
            def fn(steps, values, tags=tags):
                with writer.as_default():
                    def body(i):
                        with tf.compat.v1.name_scope(None):  # tags without "while/"
                            for j, tag in enumerate(tags):
                                tf.summary.scalar(tag, values[i, j], step=steps[i])
                        return (i + 1,)
                    tf.while_loop(lambda i: i < tf.shape(steps)[0], body, (tf.constant(0),))
            cache[(id(writer), tags)] = fn
        fn(tf.constant([int(step) for step, _ in group], tf.int64),
           tf.constant([[float(v[t]) for t in tags] for _, v in group], tf.float32))
    writer.flush()


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


def _float_values(variables) -> list:
    return [getattr(v, "value", v) for v in variables
            if str(getattr(v, "dtype", "")).split(".")[-1].startswith(("float", "bfloat"))]


def all_finite(variables) -> bool:
    """Whether every floating-point variable holds only finite values: one compiled call that
    captures the variables (a NumPy copy of each variable per epoch cost more than a short
    epoch's training); :func:`tfgan_app.utils.non_finite_variables` then names the culprits."""
    values = _float_values(variables)
    if not values:
        return True
    key = tuple(id(v) for v in values)
    if _ALL_FINITE.get("key") != key:  # a new model or new optimizer slots: compile anew
        import tensorflow as tf

        @tf.function(autograph=False)
        def fn():
            return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in values]))

        _ALL_FINITE.update(key=key, fn=fn)
    return bool(_ALL_FINITE["fn"]())


_ALL_FINITE = {}


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
        state = state_variables(self.model)
        variables = [] if all_finite(state) else non_finite_variables(state)
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
    """Keep the history ``{"epoch": [...], key: [...]}`` of every epoch in memory and rewrite
    ``path`` (``history.json``) when ``schedule`` says so (default: every epoch) and at the end.

    ``initial`` seeds it with the epochs of an earlier, resumed run. The file is written on the
    background writer (:func:`submit`) from a copy, atomically.
    """

    def __init__(self, path: str, initial: dict | None = None, schedule: Schedule | None = None):
        super().__init__()
        self.path = path
        self.history = {k: list(v) for k, v in (initial or {}).items()}
        self.schedule = schedule or Schedule()

    def on_train_begin(self, logs=None):
        self.schedule.start()

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
        if self.schedule(epoch, (self.params or {}).get("epochs")):
            self.write()

    def write(self) -> None:
        """Write the history so far (on the background writer)."""
        submit(write_json, self.path, {k: list(v) for k, v in self.history.items()})


def plot_history(history: dict, path: str, title: str = "GAN training") -> None:
    """Plot D/G losses and D's mean outputs per epoch from a history dict to ``path`` (PNG)."""
    from matplotlib.figure import Figure  # never pyplot: see tfgan_app.images

    epochs = np.asarray(history.get("epoch", range(len(history.get("d_loss", [])))))
    epochs = epochs + 1
    fig = Figure(figsize=(10, 3.6))
    panels = (((("d_loss", "discriminator"), ("g_loss", "generator")), "loss", "losses"),
              ((("d_real", "D(real)"), ("d_fake", "D(generated)")),
               "mean discriminator output", "discriminator outputs"))
    if "d_real" not in history and "cycle" in history:  # CycleGAN: its two extra loss terms
        panels = (panels[0], ((("cycle", "cycle"), ("identity", "identity")), "loss term",
                              "CycleGAN terms"))
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
            history = {k: list(v) for k, v in self.writer.history.items()}
            submit(plot_history, history, self.path, self.title)


class ScatterPlot(keras.callbacks.Callback):
    """Redraw real against generated 2-D points every ``every`` epochs and at the end."""

    def __init__(self, path: str, real, n: int = 1000, seed: int = 0, every: int = 1,
                 modes=None):
        super().__init__()
        self.path, self.real, self.n, self.seed = path, np.asarray(real), n, seed
        self.every, self.modes = every, modes

    def on_epoch_end(self, epoch, logs=None):
        if _due(self, epoch):  # sampled here, drawn on the background writer
            submit(plot_scatter, self.real[:self.n], self.model.generate(self.n, seed=self.seed),
                   self.path, f"epoch {epoch + 1}", self.modes)


class EpochPictures(keras.callbacks.Callback):
    """Every ``every`` epochs and after the last: :meth:`picture` (a ``uint8`` image, drawn on
    this thread from the model) as ``out_dir/epoch_XXXX.png``, encoded and written on the
    background writer (:func:`submit`), and, with ``tensorboard_dir``, as the TensorBoard image
    ``summary_name`` (one writer, kept). The one home of per-epoch pictures: sample grids,
    translation triptychs, CycleGAN grids."""

    summary_name = "samples"

    def __init__(self, out_dir: str, every: int = 1, scale: int = 4,
                 tensorboard_dir: str | None = None):
        super().__init__()
        self.out_dir, self.every, self.scale = out_dir, max(1, int(every)), scale
        self.tensorboard_dir, self._writer = tensorboard_dir, None

    def picture(self) -> np.ndarray:
        raise NotImplementedError

    def on_epoch_end(self, epoch, logs=None):
        if not _due(self, epoch):
            return
        grid = self.picture()
        submit(save_png, grid, os.path.join(self.out_dir, f"epoch_{epoch + 1:04d}.png"),
               self.scale)
        if self.tensorboard_dir:
            import tensorflow as tf

            if self._writer is None:
                self._writer = tf.summary.create_file_writer(self.tensorboard_dir)
            with self._writer.as_default():
                tf.summary.image(self.summary_name, grid[None], step=epoch + 1)
            self._writer.flush()


class SampleGrid(EpochPictures):
    """A PNG grid of samples from fixed latent vectors: ``out_dir/epoch_XXXX.png`` every
    ``every`` epochs and after the last.

    Unconditional: ``n`` samples in a square-ish grid. Conditional: one row per class,
    ``per_class`` columns (the same latent vectors in every row). With ``tensorboard_dir`` the
    grid is also logged as an image summary ``samples``.
    """

    def __init__(self, out_dir: str, n: int = 64, seed: int = 1234, per_class: int = 10,
                 scale: int = 4, tensorboard_dir: str | None = None, every: int = 1):
        super().__init__(out_dir, every, scale, tensorboard_dir)
        self.n, self.seed, self.per_class = n, seed, per_class

    def samples(self):
        gan = self.model
        if gan.num_classes is None:
            return gan.generate(self.n, seed=self.seed), None
        k = gan.num_classes
        z = latent_vectors(self.per_class, gan.latent_dim, self.seed).numpy()
        z = np.tile(z, (k, 1))
        labels = np.repeat(np.arange(k), self.per_class).astype(np.int32)
        return np.asarray(gan.sampling_generator([z, labels], training=False)), k

    def picture(self) -> np.ndarray:
        return image_grid(*self.samples())


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
        submit(save_png, image_grid(strip, rows=1), self.path, self.scale)


def __getattr__(name):
    """``Doctor`` (the training doctor, :mod:`tfgan_app.doctor`), loaded on first use."""
    if name == "Doctor":
        from tfgan_app.doctor import Doctor

        return Doctor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
