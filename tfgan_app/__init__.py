"""tfgan_app: generative adversarial networks with Keras 3 ``model.fit()`` and TF-GAN's losses.

Public API only; see the README for a tour.
"""

from tfgan_app import builders, data, losses  # noqa: F401
from tfgan_app.model import GANModel, latent_vectors  # noqa: F401

__version__ = "0.1.0"
