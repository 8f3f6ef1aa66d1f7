"""Checking an export against its contract, optionally in a fresh process without ``tfgan_app``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from tfgan_app.export import contract as c
from tfgan_app.export.loaded import ExportedTranslator, load_exported


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


# The translation export's twin: for each job ``[float signature, PNG signature]`` in the
# names (argv[2]) runs the float signature and the PNG one on that job's inputs in argv[3] (an
# .npz: float sources, PNG files), and the float one on the PNGs as decoded by TensorFlow here;
# serving_default on the first job's sources; writes the outputs to argv[4] for the parent.
_ISOLATED_TRANSLATION_SCRIPT = _ISOLATED_SCRIPT.split("names = json.loads")[0] + r"""
names = json.loads(sys.argv[2])
m = tf.saved_model.load(sys.argv[1])
data = np.load(sys.argv[3], allow_pickle=True)
out = {}
def run(sig, **kw):
    return m.signatures[sig](**kw)
for i, (fsig, psig) in enumerate(names["jobs"]):
    src, pngs = data[f"sources_{i}"], [bytes(b) for b in data[f"pngs_{i}"]]
    out[f"{i}_translate"] = run(fsig, **{names["source"]: src})[names["images"]].numpy()
    if i == 0:
        out["serve"] = run(names["serve"], **{names["source"]: src})[names["images"]].numpy()
    decoded = np.stack([tf.io.decode_png(b, channels=0).numpy() for b in pngs])
    out[f"{i}_on_decoded"] = run(fsig, **{names["source"]: decoded.astype(np.float32) / 127.5 - 1.0})[names["images"]].numpy()
    res = run(psig, **{names["source_png"]: tf.constant(pngs)})
    out[f"{i}_png_out"] = np.stack([tf.io.decode_png(b, channels=0).numpy() for b in res[names["png"]].numpy()])
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
    (with ``outputs``, the arrays it computed, for ``translation``: a list of jobs
    ``(float signature, PNG signature, sources, pngs)``, the first one also run through
    ``serving_default``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    names = {"serve": c.SERVING_SIGNATURE, "sample": c.SAMPLE_SIGNATURE, "labels": c.LABELS,
             "source": c.SOURCE, "source_png": c.SOURCE_PNG, "png": c.IMAGES_PNG,
             "images": c.IMAGES, "jobs": [list(job[:2]) for job in translation or ()]}
    with tempfile.TemporaryDirectory() as cwd:
        script, extra = _ISOLATED_SCRIPT, []
        if translation is not None:
            script, extra = _ISOLATED_TRANSLATION_SCRIPT, [os.path.join(cwd, "in.npz"),
                                                           os.path.join(cwd, "out.npz")]
            arrays = {}
            for i, (_, _, sources, pngs) in enumerate(translation):
                arrays[f"sources_{i}"], arrays[f"pngs_{i}"] = sources, np.array(pngs, dtype=object)
            np.savez(extra[0], **arrays)
        proc = subprocess.run(
            [sys.executable, "-I", "-c", script, os.path.abspath(path), json.dumps(names), *extra],
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
    against ``translate`` within one grey level; a CycleGAN export's two directions each).

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
    if isinstance(exp, ExportedTranslator):
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
    """:func:`verify_export` for an image-to-image export (:class:`ExportedTranslator`): a
    translation export's one direction, or each direction of a CycleGAN export.

    Checks, per direction: the signatures with the documented inputs; the float signature
    (``translate``, ``translate_a_to_b``, ``translate_b_to_a``) is finite,
    ``[N, scale*h, scale*w, C]`` and (with ``gan``) equal to the generator
    (``TranslationGAN.translate``, ``CycleGAN.translate(x, direction)``: their EMA
    generators) within ``atol``; other sizes the export accepts translate and a size it
    refuses is an error naming it; the PNG signature of PNG files equals the float one of
    the decoded images within one grey level. ``serving_default`` equals the float signature
    of ``translate`` (or ``a_to_b``). ``isolated``: the same, computed in a fresh process
    without ``tfgan_app`` and compared here.

    Returns:
      dict: ``path``, ``signatures``, ``max_abs_diff`` (None without ``gan``) and
      ``png_max_grey_levels`` (the largest over the directions), ``directions`` (CycleGAN:
      ``{direction: {"max_abs_diff", "png_max_grey_levels"}}``), ``isolated``.
    """
    def fail(msg):
        raise ExportVerificationError(f"{exp.path}: {msg}")

    sigs = {name: {"inputs": _describe(fn.structured_input_signature[1]),
                   "outputs": _describe(fn.structured_outputs)}
            for name, fn in exp.signatures.items()}
    for name in c.CYCLEGAN_SIGNATURES if exp.directions else c.TRANSLATION_SIGNATURES:
        expected_in = c.signature_inputs(name, False, translation=True)
        if {k: v[0] for k, v in sigs[name]["inputs"].items()} != expected_in:
            fail(f"{name} inputs are {sigs[name]['inputs']}, expected {expected_in}")
    ways = [exp.for_direction(d) for d in exp.directions] or [exp]
    reference = _reference(gan)
    checked = [_verify_direction(one, reference, fail, atol, num_samples, seed) for one in ways]
    serve = exp.signatures[c.SERVING_SIGNATURE](**{c.SOURCE: checked[0]["sources"]})[c.IMAGES]
    if not np.array_equal(serve.numpy(), checked[0]["images"]):
        fail(f"serving_default differs from {ways[0].translate_signature}")
    diffs = [r["max_abs_diff"] for r in checked]
    report = {"path": exp.path, "signatures": sigs,
              "max_abs_diff": None if gan is None else max(diffs),
              "png_max_grey_levels": max(r["grey"] for r in checked), "isolated": None}
    if exp.directions:
        report["directions"] = {one.direction: {"max_abs_diff": r["max_abs_diff"],
                                                "png_max_grey_levels": r["grey"]}
                                for one, r in zip(ways, checked)}
    if isolated:
        report["isolated"] = _check_isolated(exp, ways, checked, fail, atol)
    return report


def _reference(gan):
    """``(direction, sources) -> array``: what the exported generator of a direction (None for
    a one-way export) computes, from ``gan``: a TranslationGAN's or CycleGAN's ``translate``
    (their EMA generators), else what :func:`~tfgan_app.export.source.resolve_source` makes
    of it (a run directory: its sampling generators). None without ``gan``."""
    if gan is None:
        return None
    if not isinstance(gan, (str, os.PathLike)) and hasattr(gan, "translate"):
        return lambda d, x: gan.translate(x, d) if d else gan.translate(x)
    from tfgan_app.export.source import resolve_source

    src = resolve_source(gan)
    return lambda d, x: (src.directions[d] if d else src).call(x)


def _verify_direction(one, reference, fail, atol, num_samples, seed):
    """The in-process checks of one direction (:func:`_verify_translation`); what the isolated
    check compares against: ``sources``, ``pngs``, ``images``, ``expected`` (uint8 of the
    float signature on the decoded PNGs), ``max_abs_diff``, ``grey``."""
    import tensorflow as tf

    from tfgan_app.images import to_uint8
    from tfgan_app.serving import decode_png_batch

    name = one.translate_signature
    n, (h, w, channels) = max(2, int(num_samples)), one.source_shape
    rng = np.random.default_rng(seed)
    sources = rng.uniform(-1, 1, (n, h, w, channels)).astype(np.float32)
    images = one.translate(sources)
    out_shape = (n, h * one.scale, w * one.scale, one.output_shape[-1])
    if images.dtype != np.float32 or images.shape != out_shape or not np.all(np.isfinite(images)):
        fail(f"{name} returned {images.dtype} {images.shape} (expected float32 {out_shape}, finite)")
    max_diff = None
    if reference is not None:
        max_diff = float(np.max(np.abs(np.asarray(reference(one.direction, sources)) - images)))
        if max_diff > atol:
            fail(f"{name} differs from the generator by {max_diff:.3g} > atol={atol}")
    m = one.size_multiple
    if not one.fixed_size:  # another size it accepts
        hh, ww = h + m, w + m
        got = one.translate(rng.uniform(-1, 1, (1, hh, ww, channels))).shape[1:3]
        if got != (hh * one.scale, ww * one.scale):
            fail(f"{name} of {hh}x{ww} images returned {got[0]}x{got[1]}")
    if m > 1 or one.fixed_size:  # a size it refuses, in the graph itself
        try:
            one.signatures[name](**{c.SOURCE: tf.zeros([1, h + 1, w, channels])})
        except tf.errors.InvalidArgumentError as e:
            if f"{h + 1}x{w}" not in str(e):
                fail(f"{name} refused {h + 1}x{w} images without naming the size: {e}")
        except (TypeError, ValueError):
            pass  # a fixed-size signature refuses the shape when its inputs are bound
        else:
            fail(f"{name} accepted {h + 1}x{w} images (size_multiple {m})")
    u8 = to_uint8(sources)
    pngs = _pngs(u8)
    png_out = decode_png_batch(one.translate_png(pngs))
    expected = to_uint8(one.translate(u8.astype(np.float32) / 127.5 - 1.0))
    grey = _grey_levels(png_out, expected) if png_out.shape == expected.shape else 256
    if grey > 1:
        fail(f"{one.png_signature} differs from {name} of the decoded PNGs by {grey} grey levels")
    return {"sources": sources, "pngs": pngs, "images": images, "expected": expected,
            "max_abs_diff": max_diff, "grey": grey}


def _check_isolated(exp, ways, checked, fail, atol):
    """Each direction computed in a fresh process without ``tfgan_app``, compared with this
    process's results (:func:`_verify_translation`); the process's report."""
    from tfgan_app.images import to_uint8

    iso = _run_isolated(exp.path, translation=[
        (one.translate_signature, one.png_signature, r["sources"], r["pngs"])
        for one, r in zip(ways, checked)])
    if iso["tfgan_app_importable"] or iso["tfgan_app_imports_attempted"]:
        fail(f"the export needed tfgan_app in the isolated process: {iso['tfgan_app_imports_attempted']}")
    o = iso.pop("outputs")
    if not np.array_equal(o["serve"], o["0_translate"]):
        fail(f"in the isolated process serving_default differs from {ways[0].translate_signature}")
    diffs, greys = [], []
    for i, (one, r) in enumerate(zip(ways, checked)):
        name = one.translate_signature
        diffs.append(float(np.max(np.abs(o[f"{i}_translate"] - r["images"]))))
        if diffs[-1] > atol:
            fail(f"{name} in the isolated process differs by {diffs[-1]:.3g}")
        png_out, on_decoded = o[f"{i}_png_out"], to_uint8(o[f"{i}_on_decoded"])
        greys.append(_grey_levels(png_out, on_decoded)
                     if png_out.shape == r["expected"].shape == on_decoded.shape else 256)
        if greys[-1] > 1:
            fail(f"in the isolated process {one.png_signature} differs from {name} of the "
                 f"decoded PNGs by {greys[-1]} grey levels")
    iso["max_abs_diff_to_this_process"], iso["png_max_grey_levels"] = max(diffs), max(greys)
    if exp.directions:
        iso["directions"] = {one.direction: {"max_abs_diff_to_this_process": d,
                                             "png_max_grey_levels": g}
                             for one, d, g in zip(ways, diffs, greys)}
    return iso
