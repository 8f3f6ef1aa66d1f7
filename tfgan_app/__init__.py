"""tfgan_app: generative adversarial networks with Keras 3 ``model.fit()`` and TF-GAN's losses.

Public API only; see the README for a tour.
"""

__version__ = "0.1.0"
