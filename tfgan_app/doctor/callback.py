"""The training doctor as a Keras callback: probes, signals, and the diagnoses said once.

See :mod:`tfgan_app.doctor` for what it watches and :mod:`tfgan_app.doctor.rules` for the
thresholds.
"""

from __future__ import annotations

import math
import sys
import time

import keras
import numpy as np

from tfgan_app.doctor import rules
from tfgan_app.sampling import latent_vectors
from tfgan_app.utils import NonFiniteError, non_finite_logs, write_json

#: The latent seed of the doctor's fixed batch (apart from the picture grids' seeds).
PROBE_SEED = 9_173
#: The doctor's default share of the training time: it probes and judges only while the time
#: it has spent is within this fraction of the time since training began (README, "Training
#: doctor"), so its cost stays bounded however short the epochs are.
SHARE = 0.02
#: D's mean logit margin between real and generated data below which the overfitting signal
#: is 0 (a ratio of two small differences is noise).
MIN_MARGIN = 0.5
#: Training examples the data-copying probe measures nearest-neighbour distances to (the
#: first ones of ``real``; the fixed real batch is the first ``n`` of them).
COPY_REFERENCE = 2_048


class DoctorStop(RuntimeError):
    """Raised by a :class:`Doctor` with ``fix`` and ``interrupt`` at its first diagnosis: the
    run directory is left as a killed run's, its backup kept for the closed loop
    (:mod:`tfgan_app.doctor.fix`) to resume with the remedy."""

    def __init__(self, diagnosis: dict):
        super().__init__(f"stopped by the doctor: {diagnosis['message']}")
        self.diagnosis = diagnosis


def _one_blas_thread():
    """A context in which NumPy's BLAS runs on one thread. Training runs while the doctor
    probes: a multi-threaded OpenBLAS product leaves its threads spinning after it, and they
    take the cores TensorFlow's next steps need (on 2 cores, 60 epochs of digits-dcgan took
    1.3x as long with the doctor's products on 2 BLAS threads; README, "Training doctor")."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # (scikit-learn, a dependency, brings it)
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _pairwise_mean(x: np.ndarray) -> float:
    """Mean Euclidean distance over the distinct pairs of the rows of ``x``."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    sq = np.sum(x * x, 1)
    with _one_blas_thread():
        gram = x @ x.T
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)
    n = len(x)
    return float(np.sqrt(d2).sum() / max(n * (n - 1), 1))


def _nearest_distance(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Each row of ``x``'s Euclidean distance to its nearest row of ``ref``."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    ref = np.asarray(ref, np.float64).reshape(len(ref), -1)
    with _one_blas_thread():
        cross = x @ ref.T
    d2 = np.sum(x * x, 1)[:, None] + np.sum(ref * ref, 1)[None, :] - 2.0 * cross
    return np.sqrt(np.maximum(d2.min(1), 0.0))


def copying_rate(d_generated: np.ndarray, d_held_out: np.ndarray) -> float:
    """The probability that a generated example lies nearer to its nearest training example
    than a held-out real example does to its own (ties count half): the Mann-Whitney
    statistic of Meehan et al.'s data-copying test (2020) over the whole sample. 0.5: G's
    samples are as near the training set as unseen real data; above: G reproduces its
    training examples; below: its samples are farther from the data than real ones."""
    g = np.asarray(d_generated, np.float64)[:, None]
    h = np.asarray(d_held_out, np.float64)[None, :]
    return float(np.mean(g < h) + 0.5 * np.mean(g == h))


def _share_covered(labels: np.ndarray, k: int) -> float:
    """The fraction of ``k`` bins holding at least ``MODE_SHARE`` of a uniform share."""
    if len(labels) == 0:
        return 0.0
    counts = np.bincount(labels, minlength=k)[:k]
    return float(np.mean(counts >= rules.MODE_SHARE * len(labels) / k))


def _confident_rate(logits: np.ndarray) -> float:
    """The fraction of rows whose softmax's largest probability is confident
    (:func:`tfgan_app.evaluation.coverage.confident_rate`)."""
    from tfgan_app.evaluation.coverage import confident_rate

    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(-1, keepdims=True))
    return confident_rate(z.max(-1) / z.sum(-1))


_RECORDED = ("epoch", "d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm")
_DERIVED = ("doctor_grad_ratio", "doctor_oscillation", "doctor_swing")


class Doctor(keras.callbacks.Callback):
    """Watch a :class:`tfgan_app.GANModel` train and name its failure, with the remedy.

    Per epoch it reads the model's logs (``d_loss``, ``g_loss``, ``d_real``, ``d_fake``,
    ``g_grad_norm``); every ``every`` epochs it also probes the model on fixed batches (D's
    accuracy, the generated batch's diversity, D's gap between training and held-out data).
    The signals join the epoch's logs (so ``history.json`` and TensorBoard record them; place
    the doctor before the history writer) and :func:`tfgan_app.doctor.rules.diagnose` reads
    them. A new diagnosis is printed once, written to ``path`` (``doctor.json``) and to
    TensorBoard as text; with ``fix`` it stops training so :func:`tfgan_app.doctor.fix.train`
    can restart with the remedy. An epoch with NaN or infinite logs stops training at once
    (:class:`tfgan_app.utils.NonFiniteError` with the divergence diagnosis), before the history
    and the backup record that epoch; with ``stop_on_nonfinite=False`` the doctor only records
    it and leaves the stop to the :class:`~tfgan_app.callbacks.TrainingGuard` placed after it
    (``tfgan-app train``, whose message names the epoch and the learning rates). A finite
    divergence (``rules.THRESHOLDS``; checked every epoch, whatever the time budget) stops
    training too, with its diagnosis (:class:`~tfgan_app.utils.NonFiniteError`, exit status 3
    on the command line), before the history and the backup record that epoch: the last
    backup is from before the divergence. (With the doctor off, the guard only warns.)
    ``initial_history``: a resumed run's earlier history, so its signals continue.

    Args:
      real: training examples (``[N, ...]``); the first ``n`` are the fixed real batch.
        ``None``: no diversity or overfitting probes. (A discriminator that takes labels is
        not probed: D's accuracy and overfitting signals are then absent.)
      held_out: real examples D never trains on (``None``: no overfitting probe).
      modes, mode_std: the toy mixture's mode centres ``[K, 2]`` and std (nearest-mode
        counts instead of feature distances).
      classifier: a ``keras.Model`` giving class logits for images: diversity in its
        penultimate features and class coverage. ``None``: diversity in pixel space.
      every: probe period in epochs (the losses are read every epoch).
      share: the doctor's time budget as a fraction of the training time: a due probe, and
        the judging of the signals, are put off to a later epoch while the doctor has spent
        more than ``share`` of the training time since the first epoch ended (the first
        epoch, with its one-off tracing, is outside both; it, a non-finite epoch and the last
        epoch are always judged). ``None``: probe every due epoch.
      n: size of the fixed batches.
      fix: stop training at the first diagnosis (for the closed loop).
      interrupt: with ``fix``, stop by raising :class:`DoctorStop` (the run is left unfinished,
        with its backup) instead of ending training normally.
      path: where to write the diagnoses (``doctor.json``), or ``None``.
      log_dir: TensorBoard directory for the text summaries, or ``None``.
      context: overrides of the diagnosis context (``loss``, ``d_lr``, ``g_lr``, ``epochs``).
      thresholds: overrides of :data:`tfgan_app.doctor.rules.THRESHOLDS`.
      verbose: print each diagnosis once (stderr).
    """

    def __init__(self, real=None, held_out=None, *, modes=None, mode_std=None, classifier=None,
                 every: int = 1, n: int = 256, fix: bool = False, path: str | None = None,
                 log_dir: str | None = None, context: dict | None = None,
                 thresholds: dict | None = None, verbose: bool = True,
                 stop_on_nonfinite: bool = True, initial_history: dict | None = None,
                 share: float | None = SHARE, interrupt: bool = False):
        super().__init__()
        self.every = max(1, int(every))
        if share is not None and not 0 < float(share) <= 1:
            raise ValueError(f"share={share}: expected a fraction of the training time in (0, 1] "
                             "or None")
        self.share = None if share is None else float(share)
        self._setup_end = self._setup = None
        self._next_probe = 0
        self.n = int(n)
        self.real = None if real is None else np.asarray(real[:self.n], np.float32)
        self.reference = None if real is None else np.asarray(real[:COPY_REFERENCE],
                                                                np.float32)
        self.held_out = None if held_out is None else np.asarray(held_out[:self.n], np.float32)
        self.modes = None if modes is None else np.asarray(modes, np.float64)
        self.mode_std = None if mode_std is None else float(mode_std)
        self.classifier = classifier
        self.fix, self.path, self.log_dir = bool(fix), path, log_dir
        self.interrupt = bool(interrupt)
        self.user_context, self.thresholds = dict(context or {}), thresholds
        self.verbose = verbose
        # A resumed run continues the signals of its earlier epochs (the gradient's running
        # peak, the oscillation window): the same history as an uninterrupted run.
        self.history: dict = {k: list(v) for k, v in (initial_history or {}).items()
                              if k in _RECORDED or k.startswith("doctor_")}
        g = [v for v in self.history.get("g_grad_norm", []) if math.isfinite(v)]
        if g:
            self._peak = max(g)
        self.stop_on_nonfinite = bool(stop_on_nonfinite)
        self.diagnoses: list[dict] = []
        self.fix_request = None
        self.seconds = 0.0  # time spent in the doctor (its overhead)
        self._writer = None
        self._last = {k: v[-1] for k, v in self.history.items()
                      if k.startswith("doctor_") and k not in _DERIVED and k != "doctor_probe"
                      and v}
        self._feature_model = None

    # ------------------------------------------------------------------ set-up

    def _context(self) -> dict:
        gan = self.model
        ctx = {"loss": getattr(getattr(gan, "gan_loss", None), "name", "modified"),
               "epochs": (self.params or {}).get("epochs")}
        for attr in ("d_lr", "g_lr"):
            opt = getattr(gan, f"{attr[0]}_optimizer", None)
            try:
                ctx[attr] = float(np.asarray(opt.learning_rate))
            except (TypeError, ValueError, AttributeError):
                ctx[attr] = None
        return {**ctx, **self.user_context}

    def on_train_begin(self, logs=None):
        t0 = time.perf_counter()
        self.context = self._context()
        self._probe_fn = self._compile_probe()
        if self.real is not None and self.modes is None:
            feats, logits = self.real, None
            if self._feature_model is not None:
                copying = self.held_out is not None
                # the fixed real batch is the reference set's head: one pass serves both
                whole = copying and len(self.reference) >= len(self.real)
                feats, logits = self._features(self.reference if whole else self.real)
                if copying:
                    # the data-copying probe's fixed distances (in a classifier's features
                    # only: distances between raw pixels say little about which images are
                    # alike)
                    self._ref_features = feats if whole else self._features(self.reference)[0]
                    self._held_nearest = _nearest_distance(self._features(self.held_out)[0],
                                                           self._ref_features)
                feats, logits = feats[:len(self.real)], logits[:len(self.real)]
                self._real_confident = _confident_rate(logits)
            self._real_spread = _pairwise_mean(feats)
        self.seconds += time.perf_counter() - t0

    def _features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``x`` in the classifier's features, and its logits (512 images at a time)."""
        parts = [[np.asarray(t) for t in self._feature_model(x[i:i + 512])]
                 for i in range(0, len(x), 512)]
        return tuple(np.concatenate(p) for p in zip(*parts))

    # ------------------------------------------------------------------ probes

    def _compile_probe(self):
        """One ``tf.function`` computing everything a probe needs on the fixed batches."""
        import tensorflow as tf

        gan = self.model
        k = getattr(gan, "num_classes", None)
        z = latent_vectors(self.n, gan.latent_dim, PROBE_SEED)
        labels = None if k is None else tf.constant(np.arange(self.n, dtype=np.int32) % k)
        self._feature_model = None
        if self.classifier is not None and self.modes is None:
            from tfgan_app.evaluation.extractors import tap_layers

            # its penultimate (or "features") layer and its logits, as the evaluation taps them
            tapped, _, softmax = tap_layers(self.classifier)

            def features_and_logits(x):
                f, lg = tapped(x, training=False)
                return f, (keras.ops.log(keras.ops.maximum(lg, 1e-30)) if softmax else lg)
            self._feature_model = features_and_logits
        batches = {name: None if x is None else tf.constant(x)
                   for name, x in (("real", self.real), ("held", self.held_out))}
        feature_model = self._feature_model

        if gan.d_conditional:  # D's verdict on real data needs their labels: not probed
            batches = {"real": None, "held": None}

        def d_mean_logits(x):
            return tf.reshape(gan._d_forward(x, None, training=False)[0], [-1])

        @tf.function(autograph=False)  # plain Python control flow; Keras calls inside
        def probe():
            fake = gan.generator(z if labels is None else [z, labels], training=False)
            out = {"fake": tf.cast(fake, tf.float32)}
            if batches["real"] is not None:  # (an unconditional D: no labels)
                fake_d = tf.cast(fake, batches["real"].dtype)
                out["d_real"] = d_mean_logits(batches["real"])
                out["d_fake"] = d_mean_logits(fake_d)
                if batches["held"] is not None:
                    out["d_held"] = d_mean_logits(batches["held"])
            if feature_model is not None:
                out["features"], out["logits"] = feature_model(out["fake"])
            return out
        return probe

    def probe(self) -> dict:
        """The probed signals on the fixed batches (see :mod:`tfgan_app.doctor.rules`)."""
        got = {k: np.asarray(v, np.float64) for k, v in self._probe_fn().items()}
        fake = got["fake"]
        out = {}
        if "d_real" in got:
            d_real, d_fake = got["d_real"], got["d_fake"]
            sig = self.context.get("loss") in rules.SIGMOID_LOSSES
            cut = 0.0 if sig else (d_real.mean() + d_fake.mean()) / 2
            out["doctor_d_accuracy"] = float((np.mean(d_real > cut) + np.mean(d_fake <= cut)) / 2)
            if "d_held" in got:  # only where D separates real from generated data at all
                margin = d_real.mean() - d_fake.mean()
                out["doctor_overfit"] = float(np.clip(
                    (d_real.mean() - got["d_held"].mean()) / margin, -1, 2)) \
                    if margin > MIN_MARGIN else 0.0
        if self.modes is not None:
            pts = fake.reshape(len(fake), -1)
            dist = np.linalg.norm(pts[:, None, :] - self.modes[None], axis=-1)
            nearest = dist.argmin(1)
            good = dist[np.arange(len(pts)), nearest] <= 3.0 * self.mode_std
            out["doctor_modes"] = _share_covered(nearest, len(self.modes))
            out["doctor_quality"] = float(np.mean(good))
            out["doctor_modes_hq"] = _share_covered(nearest[good], len(self.modes))
        elif self.real is not None:
            feats = got.get("features", fake)
            out["doctor_diversity"] = _pairwise_mean(feats) / max(self._real_spread, 1e-12)
            if getattr(self, "_held_nearest", None) is not None:
                out["doctor_copying"] = copying_rate(
                    _nearest_distance(feats, self._ref_features), self._held_nearest)
            if "logits" in got:
                logits = got["logits"]
                out["doctor_classes"] = _share_covered(logits.argmax(-1), logits.shape[-1])
                out["doctor_quality"] = _confident_rate(logits) / max(self._real_confident,
                                                                      1.0 / len(logits))
        return out

    # ------------------------------------------------------------------ each epoch

    def on_epoch_end(self, epoch, logs=None):
        t0 = time.perf_counter()
        logs = logs if logs is not None else {}
        bad = non_finite_logs(logs, skip_prefix="val_")
        if bad:
            self._record(epoch, logs, {})
            what = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
            self.context["stopped"] = f"non-finite values in epoch {epoch + 1} ({what})"
            self.context["stopped_epoch"] = epoch + 1
            self._update(epoch)
            self.write()
            self.seconds += time.perf_counter() - t0
            if not self.stop_on_nonfinite:  # the TrainingGuard after it stops training
                return
            raise NonFiniteError(f"training stopped: {self.diagnoses[-1]['message']}",
                                 epoch=epoch + 1, quantities=bad)
        signals = dict(self._last)
        last = epoch + 1 >= int((self.params or {}).get("epochs") or 0)
        first = self._setup is None
        judge = first or last or self._within_budget(t0)
        # a probe put off by the budget runs at the next epoch within it
        due = judge and (first or epoch + 1 >= self._next_probe)
        if due:
            self._next_probe = (epoch + 1) // self.every * self.every + self.every
            probed = self.probe()
            signals.update({k: v for k, v in probed.items() if math.isfinite(v)})
        signals["doctor_probe"] = 1.0 if due else 0.0
        self._last = {k: v for k, v in signals.items() if k != "doctor_probe"}
        self._record(epoch, logs, signals)
        derived = self._derived()
        for k, v in derived.items():
            self.history.setdefault(k, []).append(v)
        signals.update(derived)
        logs.update(signals)
        # a diverging epoch is judged at once, whatever the time budget: it stops training
        # before the backup after the doctor records it (the last healthy backup stays)
        evidence = rules.divergence_evidence(self.history, len(self.history["epoch"]) - 1,
                                             self.thresholds)
        new = self._update(epoch) if judge or evidence else []
        self._pending = not (judge or evidence)
        self.seconds += time.perf_counter() - t0
        if self._setup is None:  # set-up and the first probe (tracing) are one-off costs,
            # and so is the first epoch's tracing: the budget counts from here
            self._setup, self._setup_end = self.seconds, time.perf_counter()
        diverged = [d for d in new if d["name"] == "divergence"]
        if diverged and not self.fix:  # (--doctor fix restarts with the remedy instead)
            self.context["stopped"] = f"a finite blow-up in epoch {epoch + 1} ({evidence})" \
                if evidence else diverged[0]["evidence"]
            self.context["stopped_epoch"] = epoch + 1
            self.write()
            epochs = (self.params or {}).get("epochs")
            raise NonFiniteError(
                f"training stopped in epoch {epoch + 1}" + (f"/{epochs}" if epochs else "")
                + f": {diverged[0]['message']}", epoch=epoch + 1,
                quantities={k: float(logs[k]) for k in ("d_loss", "g_loss", "g_grad_norm")
                            if k in logs})

    def _within_budget(self, now: float) -> bool:
        """Whether the doctor's time since the first epoch is within its share of the training
        time since then (the first epoch's tracing, seconds where training starts, would
        otherwise buy a dozen probes of a short-epoch run: 22 probes in 32 epochs of
        digits-cgan, 0.6 s where 2% of its 10 s is 0.2 s)."""
        if self.share is None or self._setup is None:
            return True
        return self.seconds - self._setup <= self.share * (now - self._setup_end)

    def on_train_end(self, logs=None):
        if getattr(self, "_pending", False):  # stopped early: judge the last epochs too
            self._update(int(self.history["epoch"][-1]))
            self._pending = False

    def _derived(self) -> dict:
        """This epoch's ``doctor_grad_ratio``, ``doctor_oscillation`` and ``doctor_swing``
        (incrementally)."""
        out = {}
        g = self.history.get("g_grad_norm")
        if g:
            self._peak = max(getattr(self, "_peak", 0.0), g[-1])
            out["doctor_grad_ratio"] = g[-1] / self._peak if self._peak > 0 else 1.0
        d, w = self.history.get("d_loss"), rules.window(self.context.get("epochs"))
        if d:
            out["doctor_oscillation"] = rules.oscillation(d[-w:], w)
        f = self.history.get("d_fake")
        if f and self.context.get("loss") in rules.SIGMOID_LOSSES:
            out["doctor_swing"] = rules.swing(f[-w:], w)
        return out

    def _record(self, epoch, logs, signals):
        row = {k: float(logs[k]) for k in _RECORDED if k in logs and k != "epoch"}
        row.update(signals)
        self.history.setdefault("epoch", []).append(int(epoch))
        for k, v in row.items():
            self.history.setdefault(k, []).append(v)

    def _update(self, epoch):
        said = {d["name"] for d in self.diagnoses}
        new = [d for d in rules.diagnose(self.history, self.context, self.thresholds)
               if d["name"] not in said]
        for d in new:
            self.diagnoses.append(d)
            if self.verbose:
                print(f"doctor: {d['message']}", file=sys.stderr, flush=True)
            self._tensorboard(d, epoch)
        if new:
            self.write()
            if self.fix and self.fix_request is None:
                self.fix_request = new[0]
                self.write()
                if self.interrupt:
                    raise DoctorStop(new[0])
                self.model.stop_training = True
        return new

    def _tensorboard(self, diagnosis, epoch):
        if not self.log_dir:
            return
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default():
            tf.summary.text(f"doctor/{diagnosis['name']}", diagnosis["message"], step=epoch + 1)
        self._writer.flush()

    def write(self):
        """Write ``doctor.json`` (when ``path`` is set): the diagnoses so far."""
        if self.path:
            write_json(self.path, self.summary())

    def summary(self) -> dict:
        """``{"diagnoses", "stopped", "fix_request", "seconds"}`` (JSON-ready)."""
        return {"diagnoses": self.diagnoses, "stopped": self.context.get("stopped"),
                "fix_request": self.fix_request, "seconds": round(self.seconds, 3)}
