"""Reading a run directory back (the contract written by :mod:`tfgan_app.train`)."""

from __future__ import annotations

import os

import keras

from tfgan_app.utils import read_json


def load_run(run_dir: str, compile: bool = True):
    """Load ``RUN_DIR/gan.keras`` (the whole GANModel, optimizers included).

    The returned model has ``run_config``: the run's ``config.json``.

    Raises:
      FileNotFoundError: the directory, its ``config.json`` or ``gan.keras`` is missing.
    """
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run directory {run_dir!r} does not exist")
    config = read_json(os.path.join(run_dir, "config.json"))
    path = os.path.join(run_dir, "gan.keras")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: has the run finished training?")
    import tfgan_app.model  # noqa: F401  (registers GANModel for deserialisation)

    gan = keras.saving.load_model(path, compile=compile)
    gan.run_config = config
    return gan
