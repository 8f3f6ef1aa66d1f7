"""The training job behind ``tfgan-app train``: settings in, a run directory out.

Run directory contract (every preset):

* ``config.json`` -- the resolved settings (preset + overrides), the data description (for toy
  mixtures: mode positions and standard deviations), versions;
* ``history.json`` -- per-epoch logs (``d_loss``, ``g_loss``, ``d_real``, ``d_fake``, ...);
* ``generator.keras`` -- the trained generator alone (``keras.saving.load_model``);
* ``ema_generator.keras`` -- when ``ema_decay`` is set: the weight-averaged generator, which
  sampling, evaluation and export use;
* ``gan.keras`` -- the whole :class:`~tfgan_app.GANModel` with both optimizers' state;
* ``plots/`` -- ``losses.png`` (D and G per epoch), and ``scatter.png`` for 2-D data;
* ``samples/`` -- image presets: a sample grid per epoch and ``interpolation.png``;
* ``logs/`` -- TensorBoard scalars (and sample images);
* ``report.json`` -- what the job measured at the end (e.g. the Gaussian fit for d2l-gaussian).

Files are written atomically; ``config.json`` first, so a run in progress can be inspected.
"""

from __future__ import annotations

import os
import sys

import keras
import numpy as np
import tensorflow as tf

from tfgan_app import builders, callbacks as cb, presets
from tfgan_app.data import dataset_by_name
from tfgan_app.data.toy import TOY_DISTRIBUTIONS, sample_toy
from tfgan_app.model import GANModel
from tfgan_app.utils import atomic_path, sample_frechet_to_gaussian, write_json


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
    if settings["dataset"] in TOY_DISTRIBUTIONS:
        info["points"], _ = sample_toy(settings["dataset"], seed=int(settings["seed"]), **opts)
    return ds, info


def build_gan(settings: dict, info: dict) -> GANModel:
    """Build and compile the :class:`GANModel` the settings describe, for data ``info``."""
    num_classes = settings.get("num_classes")
    if num_classes and info.get("num_classes") and int(num_classes) != int(info["num_classes"]):
        raise ValueError(f"num_classes={num_classes} but the dataset has "
                         f"{info['num_classes']} classes")
    data_shape = tuple(info["data_shape"])
    latent_dim = int(settings["latent_dim"])
    gen = builders.build("generator", settings["generator"], data_shape=data_shape,
                         latent_dim=latent_dim, num_classes=num_classes)
    disc = builders.build("discriminator", settings["discriminator"], data_shape=data_shape,
                          num_classes=num_classes)
    gan = GANModel(gen, disc, latent_dim=latent_dim, num_classes=num_classes,
                   seed=int(settings["seed"]))

    def adam(lr):
        return keras.optimizers.Adam(float(lr), beta_1=float(settings["beta_1"]),
                                     beta_2=float(settings["beta_2"]))

    gan.compile(
        d_optimizer=adam(settings["d_lr"]), g_optimizer=adam(settings["g_lr"]),
        loss=settings["loss"], loss_options=settings.get("loss_options") or {},
        d_steps=settings["d_steps"], gradient_penalty=settings["gradient_penalty"],
        r1_gamma=settings["r1_gamma"], weight_clip=settings["weight_clip"],
        ema_decay=settings.get("ema_decay"), jit_compile=settings["jit_compile"], steps_per_execution=settings["steps_per_execution"])
    return gan


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


def train(settings: dict, out_dir: str, verbose: int = 1, extra_callbacks=()) -> dict:
    """Train the GAN described by ``settings`` into run directory ``out_dir``.

    Returns ``{"gan": GANModel, "history": dict, "report": dict, "out_dir": str}``.
    """
    out_dir = os.path.abspath(out_dir)
    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    keras.utils.set_random_seed(int(settings["seed"]))
    ds, info = make_dataset(settings)
    gan = build_gan(settings, info)
    data_info = {k: v for k, v in info.items() if k != "points"}
    write_json(os.path.join(out_dir, "config.json"), {
        **settings, "data": data_info,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "tfgan_app": __import__("tfgan_app").__version__},
    })
    history = cb.HistoryWriter(os.path.join(out_dir, "history.json"))
    # Extra callbacks first: an EvaluationCallback's val_* logs must be in the logs before the
    # history writer (and any checkpointing) records the epoch.
    callbacks = [*extra_callbacks, history,
                 cb.LossCurves(os.path.join(out_dir, "plots", "losses.png"), history,
                               title=settings.get("preset") or "GAN"),
                 keras.callbacks.TensorBoard(os.path.join(out_dir, "logs"))]
    if len(info["data_shape"]) == 1 and info["data_shape"][0] == 2:
        points = info.get("points")
        callbacks.append(cb.ScatterPlot(os.path.join(out_dir, "plots", "scatter.png"),
                                        points, modes=(info.get("spec") or {}).get("modes")))
    else:
        callbacks.append(cb.SampleGrid(os.path.join(out_dir, "samples"),
                                       tensorboard_dir=os.path.join(out_dir, "logs")))
        callbacks.append(cb.LatentInterpolation(
            os.path.join(out_dir, "samples", "interpolation.png")))
    # shuffle=False: the tf.data pipeline already reshuffles every epoch.
    gan.fit(ds, epochs=int(settings["epochs"]), verbose=verbose, callbacks=callbacks,
            shuffle=False)

    with atomic_path(os.path.join(out_dir, "generator.keras"), suffix=".keras") as tmp:
        gan.generator.save(tmp)
    if gan.ema_generator is not None:  # used by sampling, evaluation and export
        with atomic_path(os.path.join(out_dir, "ema_generator.keras"), suffix=".keras") as tmp:
            gan.ema_generator.save(tmp)
    with atomic_path(os.path.join(out_dir, "gan.keras"), suffix=".keras") as tmp:
        gan.save(tmp)

    report = {}
    if settings.get("report") == "gaussian":
        report = gaussian_report(gan, info["spec"])
    write_json(os.path.join(out_dir, "report.json"), report)
    return {"gan": gan, "history": history.history, "report": report, "out_dir": out_dir}
