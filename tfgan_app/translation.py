"""TranslationGAN: paired image-to-image translation (pix2pix, super-resolution, inpainting).

A :class:`~tfgan_app.GANModel` whose generator maps a *source image* instead of noise to an
image, and whose discriminator judges ``(image, source)`` pairs (Isola et al. 2017). The
dataset yields ``(source, target)`` batches, ``float32`` in ``[-1, 1]``
(:mod:`tfgan_app.data.paired`). Everything else is ``GANModel``'s: any TF-GAN loss pair by
name, ``d_steps`` (Algorithm 1), the penalties (conditioned on the source), EMA, the other
remedies, ``tf.distribute``, mixed precision, ``.keras`` save/load and resume.

The generator's loss is TF-GAN's ``combine_adversarial_loss`` of the weighted reconstruction
loss (L1 by default, weight 100 as in pix2pix) and the adversarial loss::

    g_loss = reconstruction_weight * L1(G(source), target) + w * adversarial_loss

with ``w = adversarial_weight`` (1), or, with ``gradient_ratio=r``, TF-GAN's balancing: ``w``
chosen each step so that the reconstruction gradient's norm is ``r`` times the adversarial
one's (needs graph mode: ``fit``'s compiled step, not ``run_eagerly``).
``reconstruction_only=True`` trains the same generator with the reconstruction loss alone
(no discriminator updates): the baseline every translation benchmark compares to.

Logs: ``d_loss``, ``g_loss``, ``g_adversarial``, ``g_reconstruction``, ``d_real``, ``d_fake``;
with ``fit(validation_data=held_out_pairs)`` also ``val_psnr`` and ``val_ssim``
(``tf.image.psnr``/``ssim`` of the sampling generator's output against the target, both
mapped to ``[0, 1]``), ``val_l1`` and the validation losses.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from tfgan_app import images
from tfgan_app import losses as losses_lib
from tfgan_app.callbacks import EpochPictures
from tfgan_app.model import GANModel

RECONSTRUCTIONS = ("l1", "l2")


def image_quality(target, image) -> dict:
    """PSNR (dB) and SSIM per image of ``image`` against ``target`` (``[B, H, W, C]`` in
    ``[-1, 1]``, mapped to ``[0, 1]``), and the mean absolute error in ``[-1, 1]`` units.

    Returns ``{"psnr": float32 [B], "ssim": float32 [B], "l1": float32 [B]}``.
    """
    t = (tf.cast(target, tf.float32) + 1.0) / 2.0
    x = (tf.clip_by_value(tf.cast(image, tf.float32), -1.0, 1.0) + 1.0) / 2.0
    size = int(min(11, t.shape[1], t.shape[2]))
    return {"psnr": tf.image.psnr(t, x, max_val=1.0),
            "ssim": tf.image.ssim(t, x, max_val=1.0, filter_size=size),
            "l1": 2.0 * tf.reduce_mean(tf.abs(t - x), axis=[1, 2, 3])}


@keras.saving.register_keras_serializable(package="tfgan_app")
class TranslationGAN(GANModel):
    """Paired image-to-image GAN: ``fit`` on ``(source, target)`` batches.

    Args:
      generator: ``keras.Model``: ``source [B, h, w, Cs]`` -> ``[B, H, W, C]`` in ``[-1, 1]``
        (e.g. :func:`tfgan_app.builders.unet_generator`, :func:`~tfgan_app.builders.
        srgan_generator`).
      discriminator: ``keras.Model``: ``[image [B, H, W, C], source [B, h, w, Cs]]`` -> logits
        (one per patch for :func:`~tfgan_app.builders.patchgan_discriminator`).
      reconstruction: ``"l1"`` (pix2pix) or ``"l2"``.
      reconstruction_weight: its weight (pix2pix's lambda = 100).
      adversarial_weight: weight of the adversarial loss (``None`` with ``gradient_ratio``).
      gradient_ratio: TF-GAN's gradient-norm balancing ratio instead of a fixed weight.
      reconstruction_only: train the generator on the reconstruction loss alone.
      seed: seed of the model's random stream (dropout is the generator's noise, as in pix2pix).
    """

    def __init__(self, generator, discriminator, reconstruction="l1",
                 reconstruction_weight=100.0, adversarial_weight=1.0, gradient_ratio=None,
                 reconstruction_only=False, seed=None, **kwargs):
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got "
                             f"{reconstruction!r}")
        if float(reconstruction_weight) < 0:
            raise ValueError(f"reconstruction_weight must be >= 0, got {reconstruction_weight}")
        if gradient_ratio is not None and float(gradient_ratio) <= 0:
            raise ValueError(f"gradient_ratio must be positive or None, got {gradient_ratio}")
        if len(discriminator.inputs or []) != 2:
            raise ValueError("the discriminator must take [image, source] (two inputs), e.g. "
                             "tfgan_app.builders.patchgan_discriminator")
        # latent_dim is the source's channel count: nothing is drawn from it but training
        # noise for the remedies; num_classes stays None.
        super().__init__(generator, discriminator, latent_dim=int(generator.inputs[0].shape[-1]),
                         seed=seed, **kwargs)
        self.reconstruction = reconstruction
        self.reconstruction_weight = float(reconstruction_weight)
        self.adversarial_weight = None if adversarial_weight is None else float(
            adversarial_weight)
        self.gradient_ratio = None if gradient_ratio is None else float(gradient_ratio)
        self.reconstruction_only = bool(reconstruction_only)
        self.g_adv_tracker = keras.metrics.Mean(name="g_adversarial")
        self.g_rec_tracker = keras.metrics.Mean(name="g_reconstruction")
        self.quality_trackers = [keras.metrics.Mean(name=k) for k in ("psnr", "ssim", "l1")]

    # ------------------------------------------------------------------ Keras plumbing

    @property
    def metrics(self):
        return [*super().metrics, self.g_adv_tracker, self.g_rec_tracker,
                *self.quality_trackers]

    @property
    def d_conditional(self) -> bool:
        return True  # the discriminator always takes [image, source]

    def get_config(self):
        config = super().get_config()
        for key in ("latent_dim", "num_classes"):
            config.pop(key)
        return {**config, "reconstruction": self.reconstruction,
                "reconstruction_weight": self.reconstruction_weight,
                "adversarial_weight": self.adversarial_weight,
                "gradient_ratio": self.gradient_ratio,
                "reconstruction_only": self.reconstruction_only}

    def _check_generator(self, generator, latent_dim, num_classes):
        if len(generator.inputs or []) != 1:
            raise ValueError("a translation generator takes one input, the source image")

    def compile(self, *args, **options):
        super().compile(*args, **options)
        if self.gan_loss.needs_aux:
            raise ValueError("the 'acgan' loss needs class labels; translation pairs have none")

    # ------------------------------------------------------------------ training

    def _unpack(self, data):
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ValueError("TranslationGAN expects a dataset of (source, target) image pairs "
                             "(tfgan_app.data.paired)")
        source, target = data
        for name, t in (("source", source), ("target", target)):
            if not t.dtype.is_floating:
                raise ValueError(f"{name} images must be floating point in [-1, 1], got "
                                 f"{t.dtype.name}")
        expected = tuple(self.generator.outputs[0].shape[1:])
        if target.shape.rank is not None and tuple(target.shape[1:]) != expected:
            raise ValueError(f"the dataset's targets have shape {tuple(target.shape[1:])} but "
                             f"the generator produces {expected}")
        return target, source

    def _g_inputs(self, z, labels):
        return labels  # the source image; no latent noise (dropout is the noise)

    def _reconstruction_loss(self, real, fake):
        diff = tf.cast(fake, tf.float32) - tf.cast(real, tf.float32)
        return tf.reduce_mean(tf.abs(diff) if self.reconstruction == "l1" else tf.square(diff))

    def generator_loss(self, real, labels, training=True):
        """``reconstruction_weight * L(G(source), target)`` combined with the adversarial loss
        by TF-GAN's ``combine_adversarial_loss`` (a scalar); also logs both parts."""
        fake = tf.cast(self.generator(labels, training=training), real.dtype)
        rec = self.reconstruction_weight * self._reconstruction_loss(real, fake)
        self.g_rec_tracker.update_state(rec)
        if self.reconstruction_only:
            return rec
        adv = self.adversarial_generator_loss(real, fake, labels, training)
        self.g_adv_tracker.update_state(adv)
        return losses_lib.combine_adversarial_loss(
            rec, adv, weight_factor=None if self.gradient_ratio else self.adversarial_weight,
            gradient_ratio=self.gradient_ratio, variables=self.generator.trainable_variables)

    def train_step(self, data):
        if not self.reconstruction_only:  # the quality metrics belong to test_step only
            logs = super().train_step(data)
            return {k: v for k, v in logs.items() if k not in ("psnr", "ssim", "l1")}
        real, source = self._unpack(data)
        self.g_loss_tracker.update_state(self._g_step(real, source))
        return self._distributed_logs(
            {m.name: m.result() for m in (self.g_loss_tracker, self.g_rec_tracker)})

    def test_step(self, data):
        real, source = self._unpack(data)
        quality = image_quality(real, self.sampling_generator(source, training=False))
        for tracker in self.quality_trackers:
            tracker.update_state(tf.reduce_mean(quality[tracker.name]))
        if self.reconstruction_only:
            self.g_loss_tracker.update_state(self.generator_loss(real, source, training=False))
            names = ("g_loss", "g_reconstruction", "psnr", "ssim", "l1")
            return self._distributed_logs({m.name: m.result() for m in self.metrics
                                           if m.name in names})
        return super().test_step(data)

    # ------------------------------------------------------------------ inference

    def generate(self, *args, **kwargs):
        raise TypeError("a TranslationGAN translates images: use translate(sources)")

    def translate(self, sources, batch_size: int = 256, use_ema: bool = True) -> np.ndarray:
        """``float32 [N, H, W, C]`` in ``[-1, 1]``: the (EMA) generator on ``sources``
        (``[N, h, w, Cs]`` in ``[-1, 1]``), in inference mode (see :class:`Translator`)."""
        gen = self.sampling_generator if use_ema else self.generator
        return Translator(gen).translate(sources, batch_size)


class Translator:
    """A translation generator (``keras.Model``: ``source [B, h, w, Cs]`` -> ``[B, H, W, C]``)
    for inference: what ``TranslationGAN.translate``, ``RunDir.translator`` (``tfgan-app sample
    --input``) and the evaluation use.

    Attributes:
      generator: the model. source_shape, target_shape: ``(h, w, Cs)`` and ``(H, W, C)``
        without batch (``None`` where the model accepts any size).
    """

    def __init__(self, generator):
        if len(generator.inputs or []) != 1:
            raise ValueError("a translation generator takes one input, the source image; got "
                             f"{len(generator.inputs or [])} inputs")
        self.generator = generator
        self.source_shape = tuple(generator.inputs[0].shape[1:])
        self.target_shape = tuple(generator.outputs[0].shape[1:])

    def size_problem(self, shape) -> str | None:
        """What is wrong with one source of ``shape`` (``(h, w, Cs)``) for the generator's
        input, or ``None`` when it fits."""
        shape = tuple(shape)
        if len(shape) == len(self.source_shape) and all(
                e is None or e == s for e, s in zip(self.source_shape, shape)):
            return None
        return f"the model translates {_describe(self.source_shape)}"

    def accepts(self, shape) -> bool:
        """Whether one source of ``shape`` (``(h, w, Cs)``) fits the generator's input."""
        return self.size_problem(shape) is None

    def translate(self, sources, batch_size: int = 256) -> np.ndarray:
        """``float32 [N, H, W, C]`` in ``[-1, 1]`` for ``sources`` ``[N, h, w, Cs]`` in
        ``[-1, 1]`` (inference mode, ``batch_size`` at a time)."""
        sources = np.asarray(sources, np.float32)
        if sources.ndim != 4 or not self.accepts(sources.shape[1:]):
            raise ValueError(f"sources must have shape [N, {', '.join(map(str, self.source_shape))}"
                             f"], got {sources.shape}")
        return np.concatenate([np.asarray(self.generator(sources[i:i + batch_size],
                                                         training=False), np.float32)
                               for i in range(0, len(sources), batch_size)])

    __call__ = translate


#: The files ``translate_files`` reads from a folder (any case).
INPUT_SUFFIXES = (".png", ".jpg", ".jpeg")


def _describe(shape) -> str:
    if len(shape) != 3:
        return f"inputs of shape {tuple(shape)}"
    h, w, c = (("any" if v is None else v) for v in shape)
    return f"{h}x{w} (height x width) images with {c} channel{'s' if c != 1 else ''}"


def _size(x) -> str:
    return f"{x.shape[0]}x{x.shape[1]} (height x width)"


def input_files(path: str) -> tuple[list[str], bool]:
    """``(files, is_folder)``: the image ``path`` itself, or the PNG/JPEG files directly in the
    folder ``path`` (sorted; hidden files and other files skipped)."""
    if os.path.isfile(path):
        return [path], False
    if not os.path.isdir(path):
        raise ValueError(f"--input {path!r} not found: expected a PNG/JPEG image or a folder "
                         "of them")
    files = sorted(os.path.join(path, f) for f in os.listdir(path)
                   if not f.startswith(".") and f.lower().endswith(INPUT_SUFFIXES)
                   and os.path.isfile(os.path.join(path, f)))
    if not files:
        raise ValueError(f"no PNG/JPEG images ({', '.join(INPUT_SUFFIXES)}) directly in the "
                         f"folder {path!r}")
    return files, True


def translate_files(translator: Translator, path: str, out: str) -> dict:
    """Translate a user's image file, or every PNG/JPEG image in a folder, with ``translator``.

    Each image is read as grayscale or RGB to match the model's source channels; its size
    must be one the generator accepts (checked for every file before anything is written).
    A single image is written to the PNG file ``out``; a folder's images to
    ``out/<name>.png``, at the generator's output size.

    Returns:
      ``{"written": [paths], "converted": n (images whose channels were converted),
      "replaced": n (existing files written over), "from": shape, "to": shape}``.

    Raises:
      ValueError: unreadable files, sizes the model does not take, clashing output names,
        ``out`` of the wrong type -- each naming the file and what was expected.
    """
    files, folder = input_files(path)
    channels = translator.source_shape[-1]
    if folder and os.path.isfile(out):
        raise ValueError(f"--out {out!r} is a file; a folder of images is translated into a "
                         "folder (new or existing)")
    if not folder and os.path.isdir(out):
        raise ValueError(f"--out {out!r} is a folder; one image is translated into a PNG file "
                         f"path (e.g. {os.path.join(out, 'translated.png')!r})")
    targets = [os.path.join(out, os.path.splitext(os.path.basename(f))[0] + ".png")
               for f in files] if folder else [out]
    seen = {}
    for f, t in zip(files, targets):
        if t in seen:
            raise ValueError(f"{seen[t]} and {f} would both be written to {t}; rename one")
        seen[t] = f
    arrays, converted = [], 0
    for f in files:
        x, own = images.read_image(f, channels)
        converted += own != channels
        problem = translator.size_problem(x.shape)
        if problem:
            raise ValueError(f"{f}: a {_size(x)} image (read with {channels} "
                             f"channel{'s' if channels != 1 else ''}), but {problem}; resize "
                             "or crop it to fit")
        arrays.append(x.astype(np.float32) / 127.5 - 1.0)
    outputs = []
    for f, x in zip(files, arrays):
        try:
            outputs.append(translator.translate(x[None])[0])
        except Exception as e:  # noqa: BLE001 -- a size the model cannot take, said clearly
            raise ValueError(f"{f}: the model cannot translate a {_size(x)} image "
                             f"({type(e).__name__}: {str(e).splitlines()[0]}); it was built "
                             f"for {_describe(translator.source_shape)}") from None
    replaced = sum(os.path.exists(t) for t in targets)
    os.makedirs(out if folder else os.path.dirname(os.path.abspath(out)), exist_ok=True)
    for y, t in zip(outputs, targets):
        images.save_png(images.to_uint8(y), t)
    return {"written": targets, "converted": converted, "replaced": replaced,
            "from": translator.source_shape, "to": translator.target_shape}


def triptych(sources, generated, targets) -> np.ndarray:
    """One ``uint8`` picture: a row per example, columns source | generated | target (sources
    resized to the target's size, grayscale shown in 3 channels next to colour)."""
    t = np.asarray(targets, np.float32)
    s = tf.image.resize(np.asarray(sources, np.float32), t.shape[1:3], method="nearest").numpy()
    cols = [s, np.asarray(generated, np.float32), t]
    channels = max(c.shape[-1] for c in cols)
    cols = [np.repeat(c, channels, axis=-1) if c.shape[-1] != channels else c for c in cols]
    rows = np.stack(cols, axis=1).reshape((-1,) + t.shape[1:3] + (channels,))
    return images.tile(images.to_uint8(rows), cols=3)


class Triptych(EpochPictures):
    """Every ``every`` epochs and after the last: ``out_dir/epoch_XXXX.png``, source |
    generated | target for fixed held-out pairs (and a TensorBoard image ``triptych``)."""

    def __init__(self, out_dir: str, sources, targets, every: int = 1, scale: int = 4,
                 tensorboard_dir: str | None = None):
        super().__init__(out_dir, every, scale, tensorboard_dir)
        self.sources, self.targets = sources, targets

    summary_name = "triptych"  # of the TensorBoard image

    def picture(self) -> np.ndarray:
        """The ``uint8`` picture of this epoch (subclasses picture other things)."""
        return triptych(self.sources, self.model.translate(self.sources), self.targets)


def translation_report(gan, info: dict) -> dict:
    """``report.json`` of an image-to-image run: the held-out metrics of the (EMA) generator
    beside the input's own baseline, computed exactly as ``tfgan-app evaluate`` computes them
    (:func:`tfgan_app.evaluation.translation.translation_report`)."""
    from tfgan_app.evaluation.translation import translation_report as report

    return report(gan, info)
