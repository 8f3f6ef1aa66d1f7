"""Checking an export against its contract, optionally in a fresh process without ``tfgan_app``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from tfgan_app.export import contract as c
from tfgan_app.export.loaded import load_exported


class ExportVerificationError(AssertionError):
    """Raised by :func:`verify_export` when an export does not behave as documented."""


# Runs with ``python -I`` in an empty directory; the signature and input names come in as a
# JSON argument (the contract), since tfgan_app itself is blocked there.
_ISOLATED_SCRIPT = r"""
import importlib.abc, json, os, sys
attempts = []
class _Block(importlib.abc.MetaPathFinder):  # hides tfgan_app even when it is pip-installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tfgan_app":
            attempts.append(name)
            raise ImportError("tfgan_app is blocked in this process")
        return None
sys.meta_path.insert(0, _Block())
import numpy as np
import tensorflow as tf
names = json.loads(sys.argv[2])
m = tf.saved_model.load(sys.argv[1])
report = {"signatures": {}}
serve = m.signatures[names["serve"]]
specs = serve.structured_input_signature[1]
L = int(specs["z"].shape[-1])
labels = names["labels"]
kw = {labels: tf.constant([0, 0], tf.int32)} if labels in specs else {}
out = serve(z=tf.zeros([2, L]), **kw)
report["signatures"][names["serve"]] = {k: [v.dtype.name, list(v.shape)] for k, v in out.items()}
kw = {labels: tf.zeros([0], tf.int32)} if labels in specs else {}
sample = m.signatures[names["sample"]]
outs = [sample(num_samples=tf.constant(2), seed=tf.constant(7, tf.int64), **kw) for _ in range(2)]
report["signatures"][names["sample"]] = {k: [v.dtype.name, list(v.shape)] for k, v in outs[0].items()}
report["sample_deterministic"] = all(np.array_equal(outs[0][k].numpy(), outs[1][k].numpy()) for k in outs[0])
report["tfgan_app_imports_attempted"] = list(attempts)
try:
    import tfgan_app  # noqa
    report["tfgan_app_importable"] = True
except ImportError:
    report["tfgan_app_importable"] = False
print("REPORT " + json.dumps(report))
"""


# The translation export's twin: runs translate, serving_default and translate_png on the
# inputs in argv[3] (an .npz: float sources, PNG files), and translate on the PNGs as decoded
# by TensorFlow here; writes the outputs to argv[4] for the parent to compare.
_ISOLATED_TRANSLATION_SCRIPT = _ISOLATED_SCRIPT.split("names = json.loads")[0] + r"""
names = json.loads(sys.argv[2])
m = tf.saved_model.load(sys.argv[1])
data = np.load(sys.argv[3], allow_pickle=True)
src, pngs = data["sources"], [bytes(b) for b in data["pngs"]]
out = {"translate": m.signatures[names["translate"]](**{names["source"]: src})[names["images"]].numpy(),
       "serve": m.signatures[names["serve"]](**{names["source"]: src})[names["images"]].numpy()}
decoded = np.stack([tf.io.decode_png(b, channels=0).numpy() for b in pngs])
out["on_decoded"] = m.signatures[names["translate"]](
    **{names["source"]: decoded.astype(np.float32) / 127.5 - 1.0})[names["images"]].numpy()
res = m.signatures[names["translate_png"]](**{names["source_png"]: tf.constant(pngs)})
out["png_out"] = np.stack([tf.io.decode_png(b, channels=0).numpy() for b in res[names["png"]].numpy()])
np.savez(sys.argv[4], **out)
report = {"signatures": sorted(m.signatures), "tfgan_app_imports_attempted": list(attempts)}
try:
    import tfgan_app  # noqa
    report["tfgan_app_importable"] = True
except ImportError:
    report["tfgan_app_importable"] = False
print("REPORT " + json.dumps(report))
"""


def _run_isolated(path, timeout=300, translation=None):
    """Run the export in a fresh ``python -I`` process without ``tfgan_app``; its report
    (with ``outputs``, the arrays it computed, for ``translation=(sources, pngs)``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    names = json.dumps({"serve": c.SERVING_SIGNATURE, "sample": c.SAMPLE_SIGNATURE, "labels": c.LABELS,
                        "translate": c.TRANSLATE_SIGNATURE, "translate_png": c.TRANSLATE_PNG_SIGNATURE,
                        "source": c.SOURCE, "source_png": c.SOURCE_PNG, "png": c.IMAGES_PNG,
                        "images": c.IMAGES})
    with tempfile.TemporaryDirectory() as cwd:
        script, extra = _ISOLATED_SCRIPT, []
        if translation is not None:
            script, extra = _ISOLATED_TRANSLATION_SCRIPT, [os.path.join(cwd, "in.npz"),
                                                           os.path.join(cwd, "out.npz")]
            np.savez(extra[0], sources=translation[0], pngs=np.array(translation[1], dtype=object))
        proc = subprocess.run(
            [sys.executable, "-I", "-c", script, os.path.abspath(path), names, *extra],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        )
        outputs = dict(np.load(extra[1])) if extra and proc.returncode == 0 else None
    if proc.returncode != 0:
        raise ExportVerificationError(
            f"the export does not load/run in a fresh process without tfgan_app:\n{proc.stderr[-3000:]}"
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    if not lines:
        raise ExportVerificationError(f"no report from the isolated process:\n{proc.stdout[-2000:]}")
    report = json.loads(lines[-1][len("REPORT "):])
    if outputs is not None:
        report["outputs"] = outputs
    return report


def _describe(specs):
    """{name: TensorSpec} -> {name: [dtype name, shape list or None]}."""
    return {k: [v.dtype.name, v.shape.as_list() if v.shape.rank is not None else None]
            for k, v in specs.items()}


def verify_export(path, gan=None, *, atol=1e-5, isolated=False, num_samples=4, seed=0):
    """Check that an export behaves as documented; raise if it does not.

    Image-to-image exports are checked by
    :func:`_verify_translation` (``translate`` against the generator, ``translate_png``
    against ``translate`` within one grey level).

    Checks: both signatures exist with the documented input names/dtypes
    (:func:`tfgan_app.export.contract.signature_inputs`); ``sample`` is deterministic for a
    seed and differs between seeds; ``images_png_bytes`` decode to ``images``; pixel range;
    and, when ``gan`` is given (GAN object, run directory or keras.Model, as for
    :func:`tfgan_app.export.export_generator`), ``serving_default`` equals the generator run
    with ``training=False`` (its EMA generator when it has one) within ``atol``. With
    ``isolated=True`` the export is also loaded and run in a fresh Python process
    (``python -I``) in which ``tfgan_app`` cannot be imported.

    Args:
        path: version or base directory.
        gan: optional source to compare against.
        atol: float, max abs difference allowed against ``gan``.
        isolated: bool, also run the fresh-process check (a new process importing TensorFlow).
        num_samples: int >= 2, batch used for the checks.
        seed: int, seed used for the checks.

    Returns:
        dict: ``path``, ``signatures`` (name -> {"inputs": {name: [dtype, shape]},
        "outputs": {...}}), ``max_abs_diff`` (None without ``gan``), ``isolated``
        (the fresh process's report or None).

    Raises:
        ExportVerificationError: a check failed. FileNotFoundError/ValueError: see
        :func:`tfgan_app.export.load_exported`.
    """
    exp = load_exported(path)
    if exp.kind == "translation":
        return _verify_translation(exp, gan, atol=atol, isolated=isolated,
                                  num_samples=num_samples, seed=seed)

    def fail(msg):
        raise ExportVerificationError(f"{exp.path}: {msg}")

    n = max(2, int(num_samples))
    sigs = {name: {"inputs": _describe(fn.structured_input_signature[1]),
                   "outputs": _describe(fn.structured_outputs)}
            for name, fn in exp.signatures.items()}
    for name in (c.SERVING_SIGNATURE, c.SAMPLE_SIGNATURE):
        expected_in = c.signature_inputs(name, exp.conditional)
        if {k: v[0] for k, v in sigs[name]["inputs"].items()} != expected_in:
            fail(f"{name} inputs are {sigs[name]['inputs']}, expected {expected_in}")

    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, exp.latent_dim)).astype(np.float32)
    labels = None
    if exp.conditional:
        k = exp.num_classes or 1
        labels = (np.arange(n) % k).astype(np.int32)
    images = exp.generate(z, labels)
    if images.dtype != np.float32 or images.shape != (n, *exp.output_shape):
        fail(f"serving_default returned {images.dtype} {images.shape}")
    if not np.all(np.isfinite(images)):
        fail("serving_default returned non-finite values")
    max_diff = None
    if gan is not None:
        from tfgan_app.export.source import resolve_source

        src = resolve_source(gan)
        if src.latent_dim != exp.latent_dim or src.conditional != exp.conditional:
            fail(f"export (latent_dim={exp.latent_dim}) does not match the given GAN (latent_dim={src.latent_dim})")
        ref = np.asarray(src.call(z, labels))
        max_diff = float(np.max(np.abs(ref - images)))
        if max_diff > atol:
            fail(f"serving_default differs from the generator by {max_diff:.3g} > atol={atol}")

    a = exp.sample(n, seed, labels)
    b = exp.sample(n, seed, labels)
    other = exp.sample(n, seed + 1, labels)
    for key in a:
        if not np.array_equal(a[key], b[key]):
            fail(f"sample output {key!r} differs between two calls with seed {seed}")
    key = exp.output_key
    if np.array_equal(a[key], other[key]):
        fail(f"sample gives the same {key!r} for seeds {seed} and {seed + 1}")
    if key == c.IMAGES:
        if a[c.IMAGES].dtype != np.uint8:
            fail(f"sample images are {a[c.IMAGES].dtype}, expected uint8")
        if c.IMAGES_PNG in a:
            from tfgan_app.serving import decode_png_batch

            if not np.array_equal(decode_png_batch(a[c.IMAGES_PNG]), a[c.IMAGES]):
                fail("images_png_bytes do not decode to images")
    iso = _run_isolated(exp.path) if isolated else None
    if iso is not None:
        if iso["tfgan_app_importable"] or iso["tfgan_app_imports_attempted"]:
            fail(f"the export needed tfgan_app in the isolated process: {iso['tfgan_app_imports_attempted']}")
        if not iso["sample_deterministic"]:
            fail("sample is not deterministic in the isolated process")
    return {"path": exp.path, "signatures": sigs, "max_abs_diff": max_diff, "isolated": iso}


def _pngs(u8):
    """uint8 ``[N, H, W, C]`` -> PNG files (Pillow, not the export's encoder)."""
    import io

    from PIL import Image

    out = []
    for img in u8:
        buf = io.BytesIO()
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def _grey_levels(a, b) -> int:
    return int(np.max(np.abs(a.astype(np.int32) - b.astype(np.int32))))


def _verify_translation(exp, gan=None, *, atol=1e-5, isolated=False, num_samples=4, seed=0):
    """:func:`verify_export` for an image-to-image export (:class:`ExportedTranslator`).

    Checks: the three signatures with the documented inputs; ``translate`` is finite,
    ``[N, scale*h, scale*w, C]``, equal to ``serving_default`` and (with ``gan``) to the
    generator (``TranslationGAN.translate`` for a TranslationGAN: its EMA generator) within
    ``atol``; other sizes the export accepts translate and a size it refuses is an error
    naming it; ``translate_png`` of PNG files equals ``translate`` of the decoded images
    within one grey level. ``isolated``: the same, computed in a fresh process without
    ``tfgan_app`` and compared here.

    Returns:
      dict: ``path``, ``signatures``, ``max_abs_diff`` (None without ``gan``),
      ``png_max_grey_levels``, ``isolated``.
    """
    from tfgan_app.images import to_uint8
    from tfgan_app.serving import decode_png_batch

    def fail(msg):
        raise ExportVerificationError(f"{exp.path}: {msg}")

    sigs = {name: {"inputs": _describe(fn.structured_input_signature[1]),
                   "outputs": _describe(fn.structured_outputs)}
            for name, fn in exp.signatures.items()}
    for name in c.TRANSLATION_SIGNATURES:
        expected_in = c.signature_inputs(name, False, translation=True)
        if {k: v[0] for k, v in sigs[name]["inputs"].items()} != expected_in:
            fail(f"{name} inputs are {sigs[name]['inputs']}, expected {expected_in}")
    n, (h, w, channels) = max(2, int(num_samples)), exp.source_shape
    rng = np.random.default_rng(seed)
    sources = rng.uniform(-1, 1, (n, h, w, channels)).astype(np.float32)
    images = exp.translate(sources)
    out_shape = (n, h * exp.scale, w * exp.scale, exp.output_shape[-1])
    if images.dtype != np.float32 or images.shape != out_shape or not np.all(np.isfinite(images)):
        fail(f"translate returned {images.dtype} {images.shape} (expected float32 {out_shape}, finite)")
    serve = exp.signatures[c.SERVING_SIGNATURE](**{c.SOURCE: sources})[c.IMAGES].numpy()
    if not np.array_equal(serve, images):
        fail("serving_default differs from translate")
    max_diff = None
    if gan is not None:
        if hasattr(gan, "translate"):
            ref = np.asarray(gan.translate(sources))
        else:
            from tfgan_app.export.source import resolve_source

            ref = np.asarray(resolve_source(gan).call(sources))
        max_diff = float(np.max(np.abs(ref - images)))
        if max_diff > atol:
            fail(f"translate differs from the generator by {max_diff:.3g} > atol={atol}")
    m = exp.size_multiple
    if not exp.fixed_size:  # another size it accepts
        hh, ww = h + m, w + m
        got = exp.translate(rng.uniform(-1, 1, (1, hh, ww, channels))).shape[1:3]
        if got != (hh * exp.scale, ww * exp.scale):
            fail(f"translate of {hh}x{ww} images returned {got[0]}x{got[1]}")
    if m > 1 or exp.fixed_size:  # a size it refuses, in the graph itself
        import tensorflow as tf

        try:
            exp.signatures[c.TRANSLATE_SIGNATURE](**{c.SOURCE: tf.zeros([1, h + 1, w, channels])})
        except tf.errors.InvalidArgumentError as e:
            if f"{h + 1}x{w}" not in str(e):
                fail(f"translate refused {h + 1}x{w} images without naming the size: {e}")
        except (TypeError, ValueError):
            pass  # a fixed-size signature refuses the shape when its inputs are bound
        else:
            fail(f"translate accepted {h + 1}x{w} images (size_multiple {m})")
    u8 = to_uint8(sources)
    pngs = _pngs(u8)
    png_out = decode_png_batch(exp.translate_png(pngs))
    expected = to_uint8(exp.translate(u8.astype(np.float32) / 127.5 - 1.0))
    grey = _grey_levels(png_out, expected)
    if png_out.shape != expected.shape or grey > 1:
        fail(f"translate_png differs from translate of the decoded PNGs by {grey} grey levels")
    iso = _run_isolated(exp.path, translation=(sources, pngs)) if isolated else None
    if iso is not None:
        if iso["tfgan_app_importable"] or iso["tfgan_app_imports_attempted"]:
            fail(f"the export needed tfgan_app in the isolated process: {iso['tfgan_app_imports_attempted']}")
        o = iso.pop("outputs")
        iso_diff = float(np.max(np.abs(o["translate"] - images)))
        iso["max_abs_diff_to_this_process"] = iso_diff
        iso["png_max_grey_levels"] = _grey_levels(o["png_out"], to_uint8(o["on_decoded"]))
        if iso_diff > atol or not np.array_equal(o["serve"], o["translate"]):
            fail(f"translate in the isolated process differs by {iso_diff:.3g} (serving_default "
                 "must equal translate)")
        if o["png_out"].shape != expected.shape or iso["png_max_grey_levels"] > 1:
            fail(f"in the isolated process translate_png differs from translate of the decoded "
                 f"PNGs by {iso['png_max_grey_levels']} grey levels")
    return {"path": exp.path, "signatures": sigs, "max_abs_diff": max_diff,
            "png_max_grey_levels": grey, "isolated": iso}
