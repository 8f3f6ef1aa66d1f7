"""The one place that touches TF-GAN (``tensorflow_gan``) internals.

``import tensorflow_gan`` fails on TensorFlow >= 2.16: the package ``__init__``
imports ``tensorflow_gan.python.estimator``, which needs ``tf.estimator``, removed
from TensorFlow. The modules we need -- ``python/losses/losses_impl.py``,
``python/eval/*`` and ``python/features/*`` -- only need ``tensorflow``,
``tensorflow_probability`` and ``contrib_utils``, and work on TF 2.21.

We load them without running any package ``__init__``: temporary, empty package
modules stand in for ``tensorflow_gan``, ``tensorflow_gan.python`` and the
sub-packages while the real source files are imported, and every
``tensorflow_gan*`` entry that was not in ``sys.modules`` before is removed again
afterwards, so ``sys.modules`` is left as clean as we found it. The loaded module
objects keep working because their globals already hold what they imported.

Exposed here (module objects, loaded once, lazily):

* :func:`losses_impl` -- ``tensorflow_gan.python.losses.losses_impl``
* :func:`classifier_metrics` -- ``tensorflow_gan.python.eval.classifier_metrics``
* :func:`sliced_wasserstein` -- ``tensorflow_gan.python.eval.sliced_wasserstein``
* :func:`clip_weights` -- ``tensorflow_gan.python.features.clip_weights``
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import os
import threading
import types

_PKG = "tensorflow_gan"
_cache: dict[str, types.ModuleType] = {}
_lock = threading.Lock()


def _package_root() -> str:
    spec = importlib.util.find_spec(_PKG)  # does not execute the package __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "tensorflow-gan is not installed; install it with `pip install tensorflow-gan==2.1.0`"
        )
    return list(spec.submodule_search_locations)[0]


def load(name: str) -> types.ModuleType:
    """Return the TF-GAN module ``tensorflow_gan.python.<name>`` (e.g. ``"losses.losses_impl"``).

    The module is imported from its source file without running
    ``tensorflow_gan/__init__.py`` or any sub-package ``__init__``; ``sys.modules`` is
    restored afterwards. Results are cached.
    """
    with _lock:
        if name in _cache:
            return _cache[name]
        full = f"{_PKG}.python.{name}"
        before = {k for k in sys.modules if k == _PKG or k.startswith(_PKG + ".")}
        if full in sys.modules:  # the user already has it loaded somehow: reuse it
            _cache[name] = sys.modules[full]
            return _cache[name]
        root = _package_root()
        stubs = [_PKG, f"{_PKG}.python"]
        parts = name.split(".")
        for i in range(1, len(parts)):
            stubs.append(f"{_PKG}.python." + ".".join(parts[:i]))
        try:
            for stub in stubs:
                if stub in sys.modules:
                    continue
                mod = types.ModuleType(stub)
                rel = stub.split(".")[1:]

                mod.__path__ = [os.path.join(root, *rel)]
                mod.__package__ = stub
                sys.modules[stub] = mod
            module = importlib.import_module(full)
        finally:
            for key in [k for k in sys.modules if k == _PKG or k.startswith(_PKG + ".")]:
                if key not in before:
                    del sys.modules[key]
        _cache[name] = module
        return module


def losses_impl() -> types.ModuleType:
    """TF-GAN's ``losses_impl`` (minimax, modified, wasserstein, ... losses)."""
    return load("losses.losses_impl")


def classifier_metrics() -> types.ModuleType:
    """TF-GAN's ``classifier_metrics`` (FID, KID, classifier score)."""
    return load("eval.classifier_metrics")


def sliced_wasserstein() -> types.ModuleType:
    """TF-GAN's ``sliced_wasserstein`` (sliced Wasserstein distance for images)."""
    return load("eval.sliced_wasserstein")


def clip_weights() -> types.ModuleType:
    """TF-GAN's ``clip_weights`` (WGAN weight clipping helpers)."""
    return load("features.clip_weights")
