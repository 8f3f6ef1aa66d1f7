"""Generator and discriminator factories (all return built ``keras.Model`` s).

* ``toy_*``: the d2l two-Gaussian networks;
* ``mlp_*``: the original GAN paper's MLPs (maxout optional), conditional by ``num_classes``;
* ``dcgan_*``: Radford et al.'s DCGAN (and the TensorFlow tutorial's layer sizes), any H, W
  divisible by 4, 1 or 3 channels;
* ``conditional_dcgan_*``: label embedding into G, projection (or concatenation) in D, or an
  auxiliary classifier head (AC-GAN);
* ``with_categorical_code`` / ``with_code_head``: InfoGAN's categorical code around any
  unconditional generator and discriminator (:mod:`tfgan_app.builders.infogan`).

In preset settings a builder is named by its registry key: ``toy``, ``mlp``, ``dcgan``,
``conditional_dcgan`` (``{"builder": NAME, **kwargs}``; see :func:`build`).
"""

from tfgan_app.builders.conditional import (  # noqa: F401
    conditional_dcgan_discriminator,
    conditional_dcgan_generator,
)
from tfgan_app.builders.dcgan import dcgan_discriminator, dcgan_generator  # noqa: F401
from tfgan_app.builders.infogan import (  # noqa: F401
    CategoricalCode,
    code_size,
    with_categorical_code,
    with_code_head,
)

from tfgan_app.builders.mlp import Maxout, mlp_discriminator, mlp_generator  # noqa: F401
from tfgan_app.builders.packing import Pack, packed_discriminator, packed_shape  # noqa: F401
from tfgan_app.builders.pix2pix import (  # noqa: F401
    DepthToSpace,
    patchgan_discriminator,
    srgan_generator,
    unet_generator,
)
from tfgan_app.builders.resnet import ReflectionPadding2D, resnet_generator  # noqa: F401
from tfgan_app.builders.toy import toy_discriminator, toy_generator  # noqa: F401


def _registry():
    return {
        "toy": (lambda latent_dim, data_shape, num_classes, **kw:
                toy_generator(latent_dim, data_shape[0], **kw),
                lambda data_shape, num_classes, **kw: toy_discriminator(data_shape[0], **kw)),
        "mlp": (lambda latent_dim, data_shape, num_classes, **kw:
                mlp_generator(latent_dim, data_shape, num_classes=num_classes, **kw),
                lambda data_shape, num_classes, **kw:
                mlp_discriminator(data_shape, num_classes=num_classes, **kw)),
        "dcgan": (lambda latent_dim, data_shape, num_classes, **kw:
                  dcgan_generator(latent_dim, data_shape, **kw),
                  lambda data_shape, num_classes, **kw: dcgan_discriminator(data_shape, **kw)),
        "conditional_dcgan": (
            lambda latent_dim, data_shape, num_classes, **kw:
            conditional_dcgan_generator(latent_dim, data_shape, num_classes, **kw),
            lambda data_shape, num_classes, **kw:
            conditional_dcgan_discriminator(data_shape, num_classes, **kw)),
        # image-to-image (tfgan_app.translation): source_shape is the input image's shape
        "unet": (lambda latent_dim, data_shape, num_classes, source_shape=None, **kw:
                 unet_generator(data_shape, (source_shape or data_shape)[-1], **kw), None),
        "srgan": (lambda latent_dim, data_shape, num_classes, source_shape=None, **kw:
                  srgan_generator(data_shape, source_shape or data_shape, **kw), None),
        "patchgan": (None, lambda data_shape, num_classes, source_shape=None, **kw:
                     patchgan_discriminator(data_shape, source_shape, **kw)),
        # CycleGAN (tfgan_app.cyclegan): G maps an image of the other domain
        "resnet": (lambda latent_dim, data_shape, num_classes, source_shape=None, **kw:
                   resnet_generator(data_shape, (source_shape or data_shape)[-1], **kw), None),
    }


def names() -> list[str]:
    """Builder names usable in preset settings (``{"builder": NAME, ...}``)."""
    return sorted(_registry())


def pack_degree(spec: dict | None) -> int:
    """The PacGAN packing degree ``m`` of a discriminator spec (``1``: no packing)."""
    return int((spec or {}).get("pack") or 1)


def build(role: str, spec: dict, *, data_shape, latent_dim=None, num_classes=None,
          source_shape=None, categorical_code: int = 0):
    """Build a generator (``role="generator"``) or discriminator from a preset spec.

    ``spec`` is ``{"builder": NAME, **kwargs}``; ``data_shape`` the shape of one example
    (``(2,)`` for toy points, ``(H, W, C)`` for images); ``source_shape`` the input image's
    shape for image-to-image builders. Unknown builders raise ``ValueError``.
    A discriminator spec may add ``"pack": m`` (PacGAN): the builder's network is built for
    ``m`` samples concatenated along the last axis and wrapped by
    :func:`packed_discriminator` (unconditional discriminators only).
    ``categorical_code=K`` (InfoGAN): the generator reads a code of ``K`` values from ``z``
    and the discriminator gains the code head (:mod:`tfgan_app.builders.infogan`).
    """
    if categorical_code:
        if num_classes or source_shape is not None:
            raise ValueError("categorical_code (InfoGAN) applies to unconditional noise-to-"
                             "image GANs; got " + ("num_classes" if num_classes
                                                   else "an image-to-image run"))
        if pack_degree(spec) > 1:
            raise ValueError("categorical_code (InfoGAN) and 'pack' (PacGAN) do not combine: "
                             "the code head would judge m samples at once")
        net = build(role, spec, data_shape=data_shape, latent_dim=latent_dim)
        return (with_categorical_code(net, categorical_code) if role == "generator"
                else with_code_head(net, categorical_code))
    spec = dict(spec)
    name = spec.pop("builder", None)
    pack = pack_degree(spec)
    spec.pop("pack", None)
    if pack > 1:
        if role != "discriminator":
            raise ValueError(f"'pack' is a discriminator option (PacGAN), got it for the {role}")
        if num_classes:
            raise ValueError("'pack' (PacGAN) supports unconditional discriminators only, "
                             f"got num_classes={num_classes}")
        inner = build(role, {"builder": name, **spec}, data_shape=packed_shape(data_shape, pack))
        return packed_discriminator(inner, data_shape, pack)
    reg = _registry()
    if name not in reg:
        raise ValueError(f"unknown builder {name!r}; valid builders: {', '.join(sorted(reg))}")
    if role not in ("generator", "discriminator"):
        raise ValueError(f"role must be 'generator' or 'discriminator', got {role!r}")
    fn = reg[name][0 if role == "generator" else 1]
    if fn is None:
        raise ValueError(f"the {name!r} builder has no {role}")
    if source_shape is not None:
        spec["source_shape"] = tuple(source_shape)
    try:
        if role == "generator":
            return fn(latent_dim, tuple(data_shape), num_classes, **spec)
        return fn(tuple(data_shape), num_classes, **spec)
    except TypeError as e:
        raise ValueError(f"invalid options for the {name!r} {role} builder: {e}") from None
