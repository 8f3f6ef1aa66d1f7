"""tfgan_app: generative adversarial networks with Keras 3 ``model.fit()`` and TF-GAN's losses.

Public API only; see the README for a tour.
"""

import os as _os

# Quiet TensorFlow's C++ start-up chatter (oneDNN, CUDA probes) unless the user chose a level.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfgan_app import builders, callbacks, data, losses  # noqa: F401
from tfgan_app.model import GANModel, latent_vectors  # noqa: F401

__version__ = "0.1.0"


def __getattr__(name):
    # Heavier sub-packages load on first use: tg.evaluation, tg.export, tg.serving, tg.presets
    import importlib

    if name in ("evaluation", "export", "serving", "presets", "train", "run", "tuning",
                "distribute"):
        return importlib.import_module(f"tfgan_app.{name}")
    raise AttributeError(f"module 'tfgan_app' has no attribute {name!r}")
