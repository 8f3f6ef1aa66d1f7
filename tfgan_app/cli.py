"""The ``tfgan-app`` command line: ``train``, ``presets`` (and more subcommands as added).

``tfgan-app train`` with no arguments trains the default preset into ``runs/<preset>``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _add_train(sub):
    p = sub.add_parser("train", help="train a preset into a run directory")
    p.add_argument("--preset", default=None, help="preset name (see `tfgan-app presets`)")
    p.add_argument("--dataset", default=None, help="override the preset's dataset")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--loss", default=None, help="loss pair name, e.g. modified, wasserstein")
    p.add_argument("--d-steps", type=int, default=None, help="discriminator steps per G step")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="run directory (default runs/<preset>)")
    p.add_argument("--config", default=None, help="JSON file of settings (e.g. tuned best.json)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="override any setting; dotted keys nest")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    from tfgan_app import train
    from tfgan_app.utils import read_json

    config = None
    if args.config:
        config = read_json(args.config)
        if not isinstance(config, dict):
            raise ValueError(f"{args.config} must hold a JSON object of settings")
        config = config.get("settings", config)
    settings = train.resolve_settings(
        args.preset, config=config, overrides=args.overrides, dataset=args.dataset,
        epochs=args.epochs, batch_size=args.batch_size, loss=args.loss, d_steps=args.d_steps,
        seed=args.seed)
    out = args.out or os.path.join("runs", settings["preset"])
    print(f"training preset {settings['preset']!r} into {out}", flush=True)
    result = train.train(settings, out, verbose=0 if args.quiet else 1)
    if result["report"] and settings.get("report") == "gaussian":
        train.print_gaussian_report(result["report"])
    h = result["history"]
    if h.get("d_loss"):
        print(f"final epoch: d_loss={h['d_loss'][-1]:.4f} g_loss={h['g_loss'][-1]:.4f} "
              f"D(real)={h['d_real'][-1]:.3f} D(generated)={h['d_fake'][-1]:.3f}")
    print(f"run directory: {result['out_dir']}")
    return 0


def _add_presets(sub):
    p = sub.add_parser("presets", help="list the training presets")
    p.add_argument("--json", action="store_true", help="print full settings as JSON")
    p.set_defaults(func=_cmd_presets)


def _cmd_presets(args) -> int:
    from tfgan_app import presets

    if args.json:
        print(json.dumps({n: presets.get(n) for n in presets.names()}, indent=2))
        return 0
    width = max(len(n) for n in presets.names())
    for name, desc in presets.describe():
        mark = " (default)" if name == presets.DEFAULT_PRESET else ""
        print(f"{name:<{width}}  {desc}{mark}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfgan-app", description="Train, sample, evaluate and export GANs (Keras 3 + TF-GAN)")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_presets(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``tfgan-app`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"tfgan-app {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
