"""tfgan_app: generative adversarial networks with Keras 3 ``model.fit()`` and TF-GAN's losses.

Public API only; see the README for a tour and ``docs/architecture.md`` for the layers.
Importing the package is cheap: sub-modules (and TensorFlow) load on first use, so
``import tfgan_app.serving`` (the TF Serving client) does not import TensorFlow.
"""

import importlib as _importlib
import os as _os

# Quiet TensorFlow's C++ start-up chatter (oneDNN, CUDA probes) unless the user chose a level.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

#: Attributes of the package and the module that defines each (loaded on first access).
_ATTRIBUTES = {
    "GANModel": "tfgan_app.model",
    "latent_vectors": "tfgan_app.sampling",
    "RunDir": "tfgan_app.rundir",
    "CycleGAN": "tfgan_app.cyclegan",
}
_SUBMODULES = ("builders", "callbacks", "data", "losses", "evaluation", "export", "serving",
               "presets", "train", "rundir", "tuning", "distribute", "kinds", "options",
               "penalties", "sampling", "images", "checkpoint", "remedies", "model",
               "keras_workarounds", "randomness", "replication", "doctor", "cyclegan")

__all__ = sorted([*_ATTRIBUTES, *_SUBMODULES])


def __getattr__(name):
    if name in _ATTRIBUTES:
        return getattr(_importlib.import_module(_ATTRIBUTES[name]), name)
    if name in _SUBMODULES:
        return _importlib.import_module(f"tfgan_app.{name}")
    raise AttributeError(f"module 'tfgan_app' has no attribute {name!r}")


def __dir__():
    return __all__
