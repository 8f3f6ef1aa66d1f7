"""tf.data pipelines and sample sources for GAN training.

Everything yields ``float32`` data; images are scaled to ``[-1, 1]``.
"""

from tfgan_app.data.toy import (  # noqa: F401
    TOY_DISTRIBUTIONS,
    gaussian,
    grid,
    grid_modes,
    ring,
    ring_modes,
    toy,
)
