"""What a run produces -- 2-D points, images, class-conditional images -- decided in one place.

A :class:`Kind` says, for one kind of output, how to picture samples (training callbacks and
``tfgan-app sample``), which evaluation metrics apply and which are the defaults, which
outputs the exported signatures have and which tuning objective is the default. Every module
that needs to know "points or images?" asks :func:`kind_of` instead of deciding for itself.

Adding a kind (for example paired image-to-image translation) is registering one more
:class:`Kind` with :func:`register`, with a ``matches`` predicate over the data description;
kinds registered later are asked first, so a specific kind can refine a general one.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np


def toy_spec(data) -> dict | None:
    """The toy 2-D distribution spec inside a data description, or ``None``.

    ``data`` is a data description (``config["data"]`` as ``tfgan-app train`` writes it, with
    the spec under ``"spec"``), a spec itself (``modes`` + ``std``, or ``mean`` +
    ``covariance``), or a dataset name.
    """
    from tfgan_app.data.toy import TOY_DISTRIBUTIONS

    if isinstance(data, str):
        return {"name": data} if data in TOY_DISTRIBUTIONS else None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("spec"), dict) and toy_spec(data["spec"]) is not None:
        return data["spec"]
    if ("modes" in data and "std" in data) or ("mean" in data and "covariance" in data) \
            or data.get("name") in TOY_DISTRIBUTIONS:
        return data
    return None


def _data_rank(data) -> int | None:
    shape = data.get("data_shape") if isinstance(data, dict) else None
    return None if shape is None else len(shape)


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of generated output.

    Attributes:
      name: ``"points"``, ``"images"``, ``"conditional_images"``, ``"translation"``, ...
      description: one line for docs and errors.
      matches: ``(data, shape, num_classes) -> bool``: whether a data description (or, when
        ``data`` is ``None``, a sample shape without batch) is of this kind.
      metrics: evaluation metric names that apply (:mod:`tfgan_app.evaluation`).
      default_metrics: the ones ``tfgan-app evaluate`` computes by default.
      default_objective: the tuning objective of ``tfgan-app tune`` (a metric, minimised or
        maximised as :mod:`tfgan_app.tuning` says).
      export_outputs: output names of the exported ``sample``/``interpolate`` signatures
        (translation: of ``translate`` and ``translate_png``).
      export_signatures: the exported signatures (:mod:`tfgan_app.export.contract`).
      is_image: whether samples are images ``[H, W, C]`` (else vectors).
      callbacks: ``(run, info, every) -> [keras.callbacks.Callback]``: what pictures training
        (``run`` a :class:`tfgan_app.rundir.RunDir`, ``info`` the dataset's description).
      draw: ``(samples, path, *, title, real, modes, rows, scale) -> None``: writes a PNG of
        samples the way this kind is pictured (``tfgan-app sample``).
      make_model: ``(generator, discriminator, settings) -> keras.Model``: the model class that
        trains this kind, constructed for a run's settings (:func:`tfgan_app.train.build_gan`).
    """

    name: str
    description: str
    matches: Callable
    metrics: tuple
    default_metrics: tuple
    default_objective: str
    export_outputs: tuple
    is_image: bool
    callbacks: Callable
    draw: Callable
    make_model: Callable = None
    export_signatures: tuple = ("serving_default", "sample", "interpolate")

    def build_model(self, generator, discriminator, settings: dict):
        """The (uncompiled) model that trains this kind (see ``make_model``)."""
        return (self.make_model or _gan_model)(generator, discriminator, settings)

    def training_callbacks(self, run, info: dict, every: int = 1) -> list:
        """The callbacks that picture training for this kind, writing into ``run``."""
        return list(self.callbacks(run, info, every))

    def save_picture(self, samples, path: str, *, title: str = "", real=None, modes=None,
                     rows: int | None = None, scale: int = 4) -> None:
        """Write ``samples`` (``[N, 2]`` points or ``[N, H, W, C]`` images in ``[-1, 1]``) to
        the PNG ``path`` the way this kind is pictured."""
        self.draw(samples, path, title=title, real=real, modes=modes, rows=rows, scale=scale)


def _gan_model(generator, discriminator, settings):
    from tfgan_app.model import GANModel

    return GANModel(generator, discriminator, latent_dim=int(settings["latent_dim"]),
                    num_classes=settings.get("num_classes"), seed=int(settings["seed"]))


def _translation_model(generator, discriminator, settings):
    from tfgan_app.translation import TranslationGAN

    return TranslationGAN(generator, discriminator, seed=int(settings["seed"]),
                          **(settings.get("translation") or {}))


def _scatter_callbacks(run, info, every):
    from tfgan_app import callbacks as cb

    return [cb.ScatterPlot(run.path(run.SCATTER_PNG), info.get("points"),
                           modes=(info.get("spec") or {}).get("modes"), every=every)]


def _grid_callbacks(run, info, every):
    from tfgan_app import callbacks as cb

    return [cb.SampleGrid(run.path(run.SAMPLES), tensorboard_dir=run.path(run.LOGS),
                          every=every),
            cb.LatentInterpolation(run.path(run.INTERPOLATION_PNG))]


def _draw_scatter(samples, path, *, title="", real=None, modes=None, **_):
    from tfgan_app import images

    images.plot_scatter(np.zeros((0, 2)) if real is None else real, samples, path, title, modes)


def _draw_grid(samples, path, *, rows=None, scale=4, **_):
    from tfgan_app import images

    images.save_png(images.image_grid(samples, rows), path, scale=scale)


_POINT_METRICS = ("mode_coverage", "frechet", "kid", "precision_recall", "density_coverage")
_IMAGE_METRICS = ("fid", "kid", "is", "precision_recall", "density_coverage", "class_coverage",
                  "parzen", "swd")
_DEFAULT_IMAGE_METRICS = ("fid", "kid", "is", "precision_recall", "density_coverage",
                          "class_coverage")


def _points(data, shape, num_classes):
    if data is not None:
        return toy_spec(data) is not None or _data_rank(data) == 1
    # from a bare generator's output: anything that is not an image is exported as samples
    return shape is not None and len(shape) != 3


def _images(data, shape, num_classes):
    if data is not None:
        return toy_spec(data) is None and _data_rank(data) in (None, 3) and not (
            isinstance(data, dict) and data.get("paired"))
    return shape is not None and len(shape) == 3


def _conditional_images(data, shape, num_classes):
    return bool(num_classes) and _images(data, shape, num_classes)


POINTS = Kind("points", "points: vectors, such as the 2-D toy Gaussian and mixtures", _points,
              metrics=_POINT_METRICS, default_metrics=("mode_coverage", "frechet"),
              default_objective="frechet", export_outputs=("samples",), is_image=False,
              callbacks=_scatter_callbacks, draw=_draw_scatter)
IMAGES = Kind("images", "images [H, W, C] in [-1, 1] from noise", _images,
              metrics=_IMAGE_METRICS, default_metrics=_DEFAULT_IMAGE_METRICS,
              default_objective="fid", export_outputs=("images", "images_png_bytes"),
              is_image=True, callbacks=_grid_callbacks, draw=_draw_grid)
CONDITIONAL_IMAGES = dataclasses.replace(
    IMAGES, name="conditional_images", description="images from noise and a class label",
    matches=_conditional_images)

def _translation(data, shape, num_classes):
    if isinstance(data, str):  # a dataset name, e.g. a preset's "pairs:digits"
        return data.split(":")[0] in ("pairs", "pairs-folder", "pairs-tfds")
    return isinstance(data, dict) and bool(data.get("paired"))


def _translation_callbacks(run, info, every):
    from tfgan_app.data.paired import heldout_pairs
    from tfgan_app.translation import Triptych

    return [Triptych(run.path(run.SAMPLES), *heldout_pairs(info, 8), every=every,
                     tensorboard_dir=run.path(run.LOGS))]


#: Paired image-to-image translation (:class:`tfgan_app.translation.TranslationGAN`): pictured
#: as source | generated | target triptychs; judged by PSNR, SSIM and L1 on held-out pairs.
TRANSLATION = Kind("translation", "images translated from paired source images",
                   _translation, metrics=("psnr", "ssim", "l1", "accuracy"),
                   default_metrics=("psnr", "ssim", "l1", "accuracy"), default_objective="psnr",
                   export_outputs=("images", "images_png_bytes"), is_image=True,
                   callbacks=_translation_callbacks, draw=_draw_grid,
                   make_model=_translation_model,
                   export_signatures=("serving_default", "translate", "translate_png"))

def _cyclegan_model(generator, discriminator, settings):
    """G and D_B come from the run's builders (B = data_shape, A = source_shape); F and D_A
    are built from the same specs for the other direction (:mod:`tfgan_app.cyclegan`)."""
    from tfgan_app import builders, distribute
    from tfgan_app.cyclegan import CycleGAN

    for key, fits in (("translation", None), ("report", ("cyclegan", None))):
        if settings.get(key) is not None and (fits is None or settings[key] not in fits):
            raise ValueError(f"setting {key}={settings[key]!r} does not apply to unpaired data "
                             f"({settings.get('dataset')!r}): CycleGAN runs take the "
                             "'cyclegan' setting and report 'cyclegan'")
    shape_a, shape_b = tuple(generator.inputs[0].shape[1:]), tuple(generator.outputs[0].shape[1:])
    f = builders.build("generator", settings["generator"], data_shape=shape_a,
                       source_shape=shape_b)
    # under a mixed policy D_A's logits in float32, as train.build_gan makes D_B's (a no-op
    # when they already are)
    d_a = distribute.float32_outputs(builders.build("discriminator", settings["discriminator"],
                                                    data_shape=shape_a))
    from tfgan_app.options import check_setting

    keywords = check_setting("cyclegan", settings.get("cyclegan")) or {}  # --set cyclegan.x=v
    try:
        return CycleGAN(generator, f, d_a, discriminator, seed=int(settings["seed"]), **keywords)
    except ValueError as e:  # e.g. the identity loss between domains of different shapes
        raise ValueError(f"CycleGAN on {settings.get('dataset')!r} (domain A {shape_a}, B "
                         f"{shape_b}): {e}"
                         + (" (setting cyclegan.identity_weight)" if "identity" in str(e) else "")
                         ) from None


def _cyclegan_callbacks(run, info, every):
    from tfgan_app.cyclegan import CycleGrid
    from tfgan_app.data.unpaired import heldout_domains

    held = heldout_domains(info, 8)
    return [] if held is None else [CycleGrid(run.path(run.SAMPLES), *held, every=every,
                                              tensorboard_dir=run.path(run.LOGS))]


#: Unpaired translation (:class:`tfgan_app.cyclegan.CycleGAN`): pictured as both cycles,
#: a | G(a) | F(G(a)) | b | F(b) | G(F(b)); judged (and tuned) by the translation metrics of
#: G(a) against the offline task's known mapping (:mod:`tfgan_app.evaluation.cyclegan`).
CYCLEGAN = dataclasses.replace(
    TRANSLATION, name="cyclegan", description="images translated between unpaired domains",
    matches=lambda data, shape, num_classes: (
        data.split(":")[0] in ("unpaired", "unpaired-folder", "unpaired-tfds")
        if isinstance(data, str) else isinstance(data, dict) and bool(data.get("unpaired"))),
    callbacks=_cyclegan_callbacks, make_model=_cyclegan_model,
    export_signatures=("serving_default", "translate_a_to_b", "translate_a_to_b_png",
                       "translate_b_to_a", "translate_b_to_a_png"))

_REGISTRY: list[Kind] = []


def register(kind: Kind) -> Kind:
    """Register ``kind`` (replacing one of the same name); later kinds are matched first."""
    _REGISTRY[:] = [k for k in _REGISTRY if k.name != kind.name] + [kind]
    return kind


for _k in (POINTS, IMAGES, CONDITIONAL_IMAGES, TRANSLATION, CYCLEGAN):
    register(_k)


def names() -> list[str]:
    """Registered kind names."""
    return [k.name for k in _REGISTRY]


def get(name: str) -> Kind:
    """The registered kind ``name``; ``ValueError`` naming the valid ones otherwise."""
    for k in _REGISTRY:
        if k.name == name:
            return k
    raise ValueError(f"unknown kind {name!r}; valid kinds: {', '.join(names())}")


def kind_of(data=None, *, shape=None, num_classes=None) -> Kind:
    """The kind of a run's output: THE place that decides "points or images?".

    Args:
      data: a data description (``config["data"]``, a dataset's ``info``, a toy spec or a
        dataset name); takes precedence over ``shape``.
      shape: the shape of one sample without batch (e.g. a generator's output shape), used
        when there is no data description.
      num_classes: the *model's* number of classes (``None``: unconditional).

    Raises:
      ValueError: nothing registered matches.
    """
    if data is None and shape is None:
        raise ValueError("kind_of needs a data description or a sample shape")
    shape = None if shape is None else tuple(shape)
    for k in reversed(_REGISTRY):
        if k.matches(data, shape, num_classes):
            return k
    what = f"data {data!r}" if data is not None else f"samples of shape {shape}"
    raise ValueError(f"no kind of output matches {what}; registered kinds: "
                     f"{', '.join(names())}")
