"""Generator export for TF Serving (SavedModel) and on-device use (TFLite).

The layout and the signatures are documented in :mod:`tfgan_app.export.contract` (and
``docs/serving.md``). The package's modules, one job each:

- :mod:`~tfgan_app.export.contract`: signature, input and output names, dtypes, file names,
  limits and version numbering; imports without TensorFlow (the TF Serving client
  :mod:`tfgan_app.serving` uses it).
- :mod:`~tfgan_app.export.source`: what to export (GAN object, run directory, keras.Model;
  both generators of a CycleGAN).
- :mod:`~tfgan_app.export.graph`: the signatures as TensorFlow graphs.
- :mod:`~tfgan_app.export.writer`: :func:`export_generator`, atomic versioned writes.
- :mod:`~tfgan_app.export.loaded`: :func:`load_exported`, :class:`ExportedGenerator`,
  :class:`ExportedTranslator` (image-to-image exports; a CycleGAN export's by direction),
  :func:`sample_grid_from_saved_model`,
  :func:`tflite_generate`, :func:`tflite_translate`.
- :mod:`~tfgan_app.export.verify`: :func:`verify_export`.

The names below load on first access, so ``import tfgan_app.export.contract`` (and
``import tfgan_app.export``) does not import TensorFlow.
"""

import importlib as _importlib

from tfgan_app.export.contract import (  # noqa: F401 -- TensorFlow-free, re-exported
    CYCLEGAN_SIGNATURES,
    DEFAULT_MAX_SAMPLES,
    DIRECTION_SIGNATURES,
    EXPORT_FORMAT_VERSION,
    FORMATS,
    INTERPOLATE_SIGNATURE,
    METADATA_FILENAME,
    METADATA_RELPATH,
    SAMPLE_SIGNATURE,
    SERVING_SIGNATURE,
    TEMP_PREFIX,
    TFLITE_FILENAME,
    TRANSLATE_PNG_SIGNATURE,
    TRANSLATE_SIGNATURE,
    list_versions,
    next_version,
)

#: Public names defined in the package's modules, loaded on first access.
_LAZY = {
    "export_generator": "writer",
    "ExportedGenerator": "loaded",
    "ExportedTranslator": "loaded",
    "tflite_translate": "loaded",
    "load_exported": "loaded",
    "load_translator": "loaded",
    "sample_grid_from_saved_model": "loaded",
    "tflite_generate": "loaded",
    "ExportVerificationError": "verify",
    "verify_export": "verify",
}

__all__ = [
    "SERVING_SIGNATURE",
    "SAMPLE_SIGNATURE",
    "INTERPOLATE_SIGNATURE",
    "TRANSLATE_SIGNATURE",
    "TRANSLATE_PNG_SIGNATURE",
    "CYCLEGAN_SIGNATURES",
    "DIRECTION_SIGNATURES",
    "ExportedGenerator",
    "ExportedTranslator",
    "ExportVerificationError",
    "export_generator",
    "list_versions",
    "next_version",
    "load_exported",
    "load_translator",
    "verify_export",
    "sample_grid_from_saved_model",
    "tflite_generate",
    "tflite_translate",
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(_importlib.import_module(f"tfgan_app.export.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'tfgan_app.export' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})
