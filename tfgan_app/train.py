"""The training job behind ``tfgan-app train``: settings in, a run directory out.

The run directory it writes is described, named and read back in one place,
:mod:`tfgan_app.rundir`; what a run pictures while it trains depends on its kind
(:mod:`tfgan_app.kinds`); the settings are defined in :mod:`tfgan_app.options`.

Distribution (settings ``strategy`` and ``mixed_precision``, see :mod:`tfgan_app.distribute`):
the strategy is created first, the models, optimizers and metrics inside its scope, and the
batch size is global. Under a multi-worker strategy every worker runs the same job; only the
chief writes the run directory, the others write to a temporary directory that is removed.

Guards (README, "Reliability"): the chief holds the run directory's lock while it trains
(:meth:`tfgan_app.rundir.RunDir.lock`); a finished run is not trained again unless asked
(``overwrite``, ``resume_more``); an epoch with NaN or infinite losses or weights stops
training (:class:`tfgan_app.callbacks.TrainingGuard`) with the last healthy backups kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys

import keras
import numpy as np
import tensorflow as tf

from tfgan_app import builders, callbacks as cb, checkpoint, distribute, kinds, options, presets
from tfgan_app.data import dataset_by_name
from tfgan_app.data.toy import sample_toy
from tfgan_app.model import GANModel
from tfgan_app.rundir import RunDir
from tfgan_app.utils import NonFiniteError, sample_frechet_to_gaussian


def make_dataset(settings: dict):
    """Build ``(dataset, info)`` for the settings' ``dataset`` name (see
    :func:`tfgan_app.data.dataset_by_name`); the dataset yields batches of ``batch_size``
    (``drop_remainder=True``), reshuffled each epoch with the settings' seed. For the toy 2-D
    mixtures ``info["points"]`` holds the training points (for plots; not written to JSON).
    """
    opts = dict(settings.get("dataset_options") or {})
    ds, info = dataset_by_name(settings["dataset"], batch_size=int(settings["batch_size"]),
                               seed=int(settings["seed"]),
                               with_labels=bool(settings.get("num_classes")) or None, **opts)
    info = dict(info)
    if kinds.toy_spec(settings["dataset"]) is not None:  # real points for the scatter plot
        info["points"], _ = sample_toy(settings["dataset"], seed=int(settings["seed"]), **opts)
    return ds, info


#: Settings that may change when a killed run is started again (the rest must match).
_RESUMABLE_CHANGES = ("epochs", "strategy", "doctor")


def build_gan(settings: dict, info: dict, strategy=None) -> GANModel:
    """Build and compile the :class:`GANModel` the settings describe, for data ``info``.

    The networks, the model (its metrics) and both optimizers are created inside
    ``strategy.scope()`` (default: the strategy in scope, usually TensorFlow's default one),
    under the dtype policy of ``settings["mixed_precision"]`` (the global policy is restored
    afterwards). Under a mixed policy the discriminator's output layers compute in float32
    (:func:`tfgan_app.distribute.float32_outputs`) and, for float16, ``compile`` wraps both
    optimizers in ``LossScaleOptimizer``.
    """
    strategy = strategy or tf.distribute.get_strategy()
    policy = distribute.resolve_mixed_precision(settings.get("mixed_precision"), strategy)
    with distribute.dtype_policy(policy), strategy.scope():
        return _build_gan(settings, info, policy)


def _build_gan(settings: dict, info: dict, policy) -> GANModel:
    num_classes = settings.get("num_classes")
    if num_classes and info.get("num_classes") and int(num_classes) != int(info["num_classes"]):
        raise ValueError(f"num_classes={num_classes} but the dataset has "
                         f"{info['num_classes']} classes")
    shapes = {"data_shape": tuple(info["data_shape"]), "num_classes": num_classes,
              "source_shape": info.get("source_shape")}  # source: image-to-image pairs
    # InfoGAN's code (tfgan_app.builders.infogan) lives in z: image-to-image runs have no z and
    # ignore it, as they ignore latent_dim (e.g. the default preset's code with --dataset pairs:)
    kind = kinds.kind_of(info, num_classes=num_classes)
    code = int(settings.get("categorical_code") or 0) if kind.make_model is None else 0
    gen = builders.build("generator", settings["generator"],
                         latent_dim=int(settings["latent_dim"]), categorical_code=code, **shapes)
    disc = builders.build("discriminator", settings["discriminator"], categorical_code=code,
                          **shapes)
    if info.get("unpaired"):  # G: A -> B must take A's images (CycleGAN builds F alike)
        got = (tuple(gen.inputs[0].shape[1:]), tuple(gen.outputs[0].shape[1:]))
        want = tuple(tuple(info["domain_shapes"][k]) for k in "ab")
        if got != want:
            raise ValueError(
                f"generator {settings['generator'].get('builder')!r} maps {got[0]} to {got[1]},"
                f" but the domains of {info.get('name')!r} are A {want[0]} and B {want[1]}: use "
                "a generator that takes the source image's shape (e.g. 'resnet', which needs A "
                "and B of one height and width; dataset_options image_size sets both)")
    if policy:
        disc = distribute.float32_outputs(disc)
    gan = kind.build_model(gen, disc, settings)

    d_steps_total = _run_d_steps(settings, info)
    g_steps_total = max(1, -(-d_steps_total // int(settings["d_steps"])))

    def adam(lr, total_steps):
        lr = float(lr)
        decay = options.check_setting("lr_decay", settings.get("lr_decay"))
        if decay == "linear":  # to lr * floor at the run's last step, then constant
            floor = float(settings.get("lr_decay_floor", 0.01))
            lr = keras.optimizers.schedules.PolynomialDecay(
                lr, decay_steps=int(total_steps), end_learning_rate=lr * floor, power=1.0)
        elif decay == "linear_second_half":  # the CycleGAN paper's: constant, then to 0
            from tfgan_app.cyclegan import LinearDecay

            lr = LinearDecay(lr, int(total_steps), decay_start=0.5)
        return keras.optimizers.Adam(lr, beta_1=float(settings["beta_1"]),
                                     beta_2=float(settings["beta_2"]))

    compile_kwargs = options.compile_kwargs(settings)
    if kind.make_model is not None:  # image-to-image: no z, no code, no InfoGAN weight
        compile_kwargs.pop("info_weight", None)
        compile_kwargs.update(_unconditional_recipe_off(settings))
    gan.compile(d_optimizer=adam(settings["d_lr"], d_steps_total),
                g_optimizer=adam(settings["g_lr"], g_steps_total), **compile_kwargs)
    return gan


#: Compile options a preset for z-driven GANs sets for its own model (the default preset's
#: lazy R1): an image-to-image run started from that preset (``--dataset pairs:...`` without
#: ``--preset``) does not inherit them; a value set for the run (``--set``) that differs
#: from the preset's applies.
_UNCONDITIONAL_RECIPE = ("r1_gamma", "r1_interval")


def _unconditional_recipe_off(settings: dict) -> dict:
    """The options of :data:`_UNCONDITIONAL_RECIPE` still at the run's preset's values, reset
    to their defaults (off) for an image-to-image run."""
    name = settings.get("preset")
    if name not in presets.PRESETS:
        return {}
    preset, defaults = presets.PRESETS[name], options.default_settings()
    return {k: defaults[k] for k in _UNCONDITIONAL_RECIPE
            if k in preset and settings.get(k) == preset[k]}


def _run_d_steps(settings: dict, info: dict) -> int:
    """Discriminator steps in the whole run (steps per epoch x epochs)."""
    steps = info.get("steps_per_epoch") or (
        int(info.get("num_examples") or 0) // int(settings["batch_size"]))
    return max(1, int(steps) * int(settings["epochs"]))


def resolve_settings(preset: str | None = None, config: dict | None = None, overrides=None,
                     **explicit) -> dict:
    """Preset defaults, then a ``--config`` dict, then explicit values, then ``--set`` items."""
    settings = presets.get(preset or presets.DEFAULT_PRESET)
    if config:
        settings = presets.apply_overrides(settings, config)
    settings = presets.apply_overrides(
        settings, {k: v for k, v in explicit.items() if v is not None})
    return presets.apply_overrides(settings, overrides or [])


def gaussian_report(gan: GANModel, spec: dict, n: int = 10_000, seed: int = 12345) -> dict:
    """Fit a Gaussian to ``n`` generated points and compare it with the target ``N(b, A^T A)``."""
    pts = gan.generate(n, seed=seed).astype(np.float64)
    mean, cov = pts.mean(0), np.cov(pts, rowvar=False)
    target_mean, target_cov = np.asarray(spec["mean"]), np.asarray(spec["covariance"])
    return {
        "num_samples": n,
        "generated_mean": mean.tolist(), "target_mean": target_mean.tolist(),
        "generated_covariance": cov.tolist(), "target_covariance": target_cov.tolist(),
        "frechet_distance": sample_frechet_to_gaussian(pts, target_mean, target_cov),
    }


def mode_coverage_report(gan: GANModel, spec: dict, n: int = 2500, seed: int = 10_000) -> dict:
    """VEEGAN's protocol on ``n`` generated points: modes captured and the high-quality
    fraction (within 3 std of the nearest mode), as ``benchmarks/mode_collapse.py`` measures."""
    from tfgan_app.evaluation import mode_coverage

    rep = mode_coverage(gan.generate(n, seed=seed), spec["modes"], spec["std"])
    return {"num_samples": n, "std": spec["std"], **rep}


def print_gaussian_report(rep: dict, file=sys.stdout) -> None:
    m, tm = rep["generated_mean"], rep["target_mean"]
    c, tc = rep["generated_covariance"], rep["target_covariance"]
    print("                 generated              target (b, A^T A)", file=file)
    print(f"mean        [{m[0]:7.3f} {m[1]:7.3f}]      [{tm[0]:7.3f} {tm[1]:7.3f}]", file=file)
    for i in range(2):
        print(f"cov row {i}   [{c[i][0]:7.3f} {c[i][1]:7.3f}]      "
              f"[{tc[i][0]:7.3f} {tc[i][1]:7.3f}]", file=file)
    print(f"Frechet distance to the target: {rep['frechet_distance']:.4f} "
          f"({rep['num_samples']} samples)", file=file)


def weights_fingerprint(model) -> str:
    """SHA-1 of a model's weights (bytes of every array, in order): equal fingerprints mean
    bit-identical weights (used to check that the workers of a multi-worker run agree)."""
    h = hashlib.sha1()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def _generator(gan):
    """The generator a run's fingerprint covers: G (A -> B) of a CycleGAN."""
    return gan.generator_ab if hasattr(gan, "generator_ab") else gan.generator


def _changed_settings(saved: dict, settings: dict, ignore=()) -> list[str]:
    """Settings keys whose values differ between a stored run and ``settings``."""
    settings = json.loads(json.dumps(settings))  # as stored: tuples become lists
    saved = {k: v for k, v in saved.items() if k not in ("data", "versions")}
    keys = (set(saved) | set(settings)) - set(ignore)
    return sorted(k for k in keys if saved.get(k) != settings.get(k))


def _check_resumable(meta: dict, settings: dict, backup_dir: str) -> None:
    changed = _changed_settings(meta.get("settings", {}), settings, _RESUMABLE_CHANGES)
    if changed:
        raise ValueError(f"{backup_dir} holds a backup of a run with different settings "
                         f"({', '.join(changed)}); start again with the same settings to "
                         "resume, or pass --no-resume (resume=False) to start from scratch")
    if int(meta["epoch"]) > int(settings["epochs"]):
        raise ValueError(f"{backup_dir} holds a backup of {meta['epoch']} epochs, more than "
                         f"epochs={settings['epochs']}: pass --epochs {meta['epoch']} or more "
                         "to resume it, or --no-resume (resume=False) to start from scratch")


def _plan(run: RunDir, settings: dict, overwrite: bool, resume_more: bool,
          chief: bool) -> str:
    """What :func:`train` does in ``run``: ``"train"`` (afresh, or resuming its backup),
    ``"more"`` (continue a finished run to more epochs) or ``"finished"`` (nothing)."""
    run.check_trainable()
    if chief:
        removed = run.remove_stale_temporaries(locked=True)
        if removed:
            print(f"removed {len(removed)} temporary file(s) left by killed writes in "
                  f"{run.root}", flush=True)
    if overwrite:
        if chief and os.path.isdir(run.root):
            run.clear_outputs()
        return "train"
    if not run.finished():
        if resume_more and checkpoint.latest_backup(run.path(run.BACKUP)) is None:
            raise ValueError(f"--resume-more (resume_more=True) continues a finished run; "
                             f"{run.root!r} holds none (expected a run directory written by "
                             "`tfgan-app train`)")
        if (chief and os.path.isfile(run.path(run.CONFIG))
                and checkpoint.latest_backup(run.path(run.BACKUP)) is None):
            print(f"{run.root}: the run there stopped before its first backup; training "
                  "afresh", flush=True)
        return "train"  # new, or killed: its backup (if any) is resumed
    done = len(run.history().get("epoch", [])) or int(run.config.get("epochs") or 0)
    epochs = int(settings["epochs"])
    changed = _changed_settings(run.config, settings, ("strategy", "epochs"))
    if changed:
        raise ValueError(f"{run.root!r} holds a finished run with other settings "
                         f"({', '.join(changed)}): pass --overwrite (overwrite=True) to train "
                         "it again from scratch, or choose another --out")
    if resume_more:
        if epochs <= done:
            raise ValueError(f"--resume-more --epochs {epochs}: {run.root!r} has already "
                             f"trained {done} epochs; expected --epochs above {done}")
        return "more"
    if epochs != done:
        raise ValueError(
            f"{run.root!r} is a finished run of {done} epochs, not {epochs}: pass "
            + (f"--resume-more --epochs {epochs} (resume_more=True) to continue it"
               if epochs > done else "--overwrite (overwrite=True) to train it again")
            + ", or choose another --out")
    return "finished"


def _finished_result(run: RunDir) -> dict:
    gan = run.load_gan()
    history = run.history()
    print(f"{run.root} is already trained ({len(history.get('epoch', []))} epochs, the same "
          "settings): nothing to do. --overwrite trains it again from scratch, --resume-more "
          "--epochs N continues it to N epochs", flush=True)
    return {"gan": gan, "history": history, "report": run.report(),
            "resumed_from_epoch": None, "already_finished": True, "warnings": [],
            "fingerprint": weights_fingerprint(_generator(gan))}


def _passes_started(ds, epochs_done: int) -> int:
    """How many iterators ``fit`` created on ``ds`` before epoch ``epochs_done``.

    Keras 3's ``EpochIterator`` starts a pass at the beginning of every epoch and, when the
    number of batches is known, another at its end (which the next epoch does not use); with an
    unknown cardinality the first epoch only starts one (it learns the count by exhausting it).
    """
    if epochs_done <= 0:
        return 0
    known = int(ds.cardinality()) >= 0
    return 2 * epochs_done if known else 2 * epochs_done - 1


def train(settings: dict, out_dir: str, verbose: int = 1, extra_callbacks=(),
          resume: bool = True, overwrite: bool = False, resume_more: bool = False) -> dict:
    """Train the GAN described by ``settings`` into run directory ``out_dir``.

    A finished run is never trained again silently: with the same settings nothing is done
    (the finished run is loaded and returned, ``"already_finished": True``), with other
    settings ``ValueError`` says what differs. While training, ``out_dir/train.lock`` keeps
    a second ``train`` out (:class:`tfgan_app.rundir.RunLockedError`); temporaries left by
    killed writes are removed first. An epoch with NaN or infinite losses or weights stops
    training (:class:`tfgan_app.utils.NonFiniteError`); the last healthy backups are kept.

    Args:
      settings: from :func:`resolve_settings`; ``strategy`` and ``mixed_precision`` choose
        the distribution strategy and dtype policy (see :mod:`tfgan_app.distribute`).
      out_dir: the run directory: new or empty, or one written by ``train``.
      verbose: Keras progress bar (0: none).
      extra_callbacks: callbacks run before the history is recorded each epoch.
      resume: continue from ``out_dir/backup`` when a killed run left one (the settings must
        match, except ``epochs`` and ``strategy``); ``False`` deletes it and starts afresh.
      overwrite: remove everything an earlier run wrote in ``out_dir`` (finished or not) and
        train afresh; other files there are kept.
      resume_more: continue a finished run to ``settings["epochs"]`` epochs (more than it
        has; the other settings must match), from its saved state (``gan.keras``).

    Returns ``{"gan", "history", "report", "out_dir", "resumed_from_epoch" (``None`` or the
    number of epochs the backup had done), "already_finished", "warnings" (e.g. a diverging
    loss, see :class:`tfgan_app.callbacks.TrainingGuard`), "is_chief", "task",
    "fingerprint"}`` (the SHA-1 of the generator's weights).
    """
    # First: a MultiWorkerMirroredStrategy must exist before TensorFlow does anything else.
    strategy = distribute.get_strategy(settings.get("strategy") or "default")
    replicas = strategy.num_replicas_in_sync
    if int(settings["batch_size"]) % replicas:
        raise ValueError(f"batch_size={settings['batch_size']} is the global batch size and "
                         f"must be divisible by the {replicas} replicas of strategy "
                         f"{settings.get('strategy')!r}")
    pack = builders.pack_degree(settings.get("discriminator"))
    if (int(settings["batch_size"]) // replicas) % pack:
        raise ValueError(f"discriminator pack={pack} (PacGAN) needs a per-replica batch size "
                         f"divisible by {pack}, got batch_size={settings['batch_size']} over "
                         f"{replicas} replica(s)")
    if overwrite and resume_more:
        raise ValueError("--overwrite and --resume-more exclude each other: the first trains "
                         "afresh, the second continues a finished run")
    if resume_more and distribute.is_multi_worker(strategy):
        raise ValueError("--resume-more is not supported under the multiworker strategy; "
                         "continue the run with one worker")
    out_dir = os.path.abspath(out_dir)
    run = RunDir(out_dir)
    chief = distribute.is_chief(strategy)
    # Only the chief locks and writes the run directory; other workers run every save
    # identically (saving may involve collective ops) into a temporary directory.
    with run.lock() if chief else contextlib.nullcontext():
        plan = _plan(run, settings, overwrite, resume_more, chief)
        if plan == "finished":
            result = _finished_result(run)
        else:
            run_dir, temporary = distribute.worker_dir(out_dir, strategy)
            try:
                result = _train(settings, run_dir, run.path(RunDir.BACKUP), strategy, verbose,
                                extra_callbacks, resume and not overwrite, plan == "more")
            finally:
                distribute.remove_worker_dir(run_dir, temporary)
    result["out_dir"] = out_dir
    result["is_chief"] = chief
    result["task"] = distribute.task_name(strategy)
    return result


def _train(settings, run_dir, backup_dir, strategy, verbose, extra_callbacks, resume, more):
    run = RunDir(run_dir)
    if not resume and distribute.is_chief(strategy):
        shutil.rmtree(backup_dir, ignore_errors=True)
    previous = checkpoint.latest_backup(backup_dir) if resume and not more else None
    if previous is not None:
        _check_resumable(previous[1], settings, backup_dir)

    keras.utils.set_random_seed(int(settings["seed"]))
    ds, info = make_dataset(settings)
    gan = build_gan(settings, info, strategy)
    if more:  # the finished run's state becomes a backup, then it resumes as a killed run
        history_so_far = run.history()
        done = len(history_so_far.get("epoch", []))
        print(f"continuing the finished run of {done} epochs in {run.root} to "
              f"{settings['epochs']} epochs", flush=True)
        gan.load_weights(run.path(run.GAN))  # networks, optimizers, noise state
        checkpoint.write_backup(gan, backup_dir, done,
                                {"history": history_so_far, "settings": settings})
        run.remove(run.REPORT, run.EVAL)  # no longer finished; its evaluation is outdated
        previous = checkpoint.latest_backup(backup_dir)
    run.write_config(settings, {k: v for k, v in info.items() if k != "points"},
                     {"tensorflow": tf.__version__, "keras": keras.__version__,
                      "tfgan_app": __import__("tfgan_app").__version__})
    start_epoch = 0
    initial_history = None
    if previous is not None:
        meta = previous[1]
        start_epoch = int(meta["epoch"])
        initial_history = {k: list(v) for k, v in (meta.get("history") or {}).items()}
        print(f"resuming from {previous[0]}: {start_epoch} epoch(s) done, "
              f"d_optimizer.iterations={meta.get('d_iterations')}, "
              f"g_optimizer.iterations={meta.get('g_iterations')}", flush=True)
        # The pipeline reshuffles on every pass with a seeded generator: start as many passes
        # (without reading them) as fit had started, so the resumed epochs see the same data
        # order as an uninterrupted run would (tests/test_resume.py checks bit-equality).
        for _ in range(_passes_started(ds, start_epoch)):
            iter(ds)
    # Bookkeeping costs a bounded share of the run (README, "Bookkeeping and resume"): each
    # kind of write runs every N epochs, at most every S seconds, and after the last epoch.
    plot_seconds = float(settings["plot_seconds"])
    history = cb.HistoryWriter(run.path(run.HISTORY), initial=initial_history,
                               schedule=cb.Schedule(1, plot_seconds))
    backup = checkpoint.RunBackup(
        backup_dir, write_dir=run.path(run.BACKUP), delete_checkpoint=False,
        metadata=lambda: {"history": history.history, "settings": settings},
        every=int(settings["backup_every"]), seconds=float(settings["backup_seconds"]))
    every = int(settings["plot_every"])
    kind = kinds.kind_of(info, num_classes=settings.get("num_classes"))
    pictures = cb.Scheduled([cb.LossCurves(run.path(run.LOSSES_PNG), history,
                                           title=settings.get("preset") or "GAN", every=every),
                             *kind.training_callbacks(run, info, every)],
                            cb.Schedule(every, plot_seconds))
    # The guard first: a non-finite epoch stops at once, before anything records it. Then the
    # extra callbacks: an EvaluationCallback's val_* logs must be in the logs before the
    # history writer (and then the backup) records the epoch.
    guard = cb.TrainingGuard()
    from tfgan_app import doctor  # the training doctor (README, "Training doctor")

    doctors = doctor.for_run(settings, run, info, initial_history=initial_history)
    callbacks = [*doctors, guard, *extra_callbacks, history, backup, pictures,
                 cb.ScheduledTensorBoard(run.path(run.LOGS), cb.Schedule(1, plot_seconds))]
    try:  # shuffle=False: the tf.data pipeline already reshuffles every epoch.
        with cb.background_writes():  # PNGs and JSON drawn and written off this thread
            gan.fit(ds, epochs=int(settings["epochs"]), verbose=verbose, callbacks=callbacks,
                    shuffle=False)
    except NonFiniteError as e:
        kept = checkpoint.latest_backup(backup_dir)
        where = (f"the last healthy state (epoch {kept[1]['epoch']}) is kept in {kept[0]} and "
                 "the same command resumes from it" if kept else "no backup had been written")
        raise NonFiniteError(f"{e}. Nothing was saved over earlier work: {where}; to train "
                             "with other settings pass --no-resume or --overwrite",
                             e.epoch, e.quantities) from None

    run.write_models(gan)
    report = {}
    if settings.get("report") == "gaussian":
        report = gaussian_report(gan, info["spec"])
    elif settings.get("report") == "mode_coverage":
        report = mode_coverage_report(gan, info["spec"], seed=10_000 + int(settings["seed"]))
    elif settings.get("report") == "translation":
        from tfgan_app.translation import translation_report

        report = translation_report(gan, info)
    elif settings.get("report") == "cyclegan":
        from tfgan_app.evaluation.cyclegan import cyclegan_report

        report = cyclegan_report(gan, info)
    report = doctor.add_to_report(doctors, report)
    run.write_report(report)
    # Every output is written: the backup is no longer needed.
    shutil.rmtree(run.path(run.BACKUP), ignore_errors=True)
    return {"gan": gan, "history": history.history, "report": report,
            "resumed_from_epoch": start_epoch if previous is not None else None,
            "already_finished": False, "warnings": [guard.warning] if guard.warning else [],
            "fingerprint": weights_fingerprint(_generator(gan))}
