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


def _run_isolated(path, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    names = json.dumps({"serve": c.SERVING_SIGNATURE, "sample": c.SAMPLE_SIGNATURE, "labels": c.LABELS})
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _ISOLATED_SCRIPT, os.path.abspath(path), names],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        )
    if proc.returncode != 0:
        raise ExportVerificationError(
            f"the export does not load/run in a fresh process without tfgan_app:\n{proc.stderr[-3000:]}"
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    if not lines:
        raise ExportVerificationError(f"no report from the isolated process:\n{proc.stdout[-2000:]}")
    return json.loads(lines[-1][len("REPORT "):])


def _describe(specs):
    """{name: TensorSpec} -> {name: [dtype name, shape list or None]}."""
    return {k: [v.dtype.name, v.shape.as_list() if v.shape.rank is not None else None]
            for k, v in specs.items()}


def verify_export(path, gan=None, *, atol=1e-5, isolated=False, num_samples=4, seed=0):
    """Check that an export behaves as documented; raise if it does not.

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
