"""The ``tfgan-app`` command line: ``train``, ``presets``, ``sample``, ``evaluate``, ``export``
and ``tune``, one module per group of subcommands.

``tfgan-app train`` with no arguments trains the default preset into ``runs/<preset>``. A
user's mistake (a bad setting, a missing file) prints one line naming it and exits with
status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser() -> argparse.ArgumentParser:
    from tfgan_app.cli import runs, train
    from tfgan_app.cli.tune import add_tune_parser

    parser = argparse.ArgumentParser(
        prog="tfgan-app", description="Train, sample, evaluate and export GANs (Keras 3 + TF-GAN)")
    sub = parser.add_subparsers(dest="command", required=True)
    train.add_train(sub)
    train.add_presets(sub)
    runs.add_sample(sub)
    runs.add_evaluate(sub)
    runs.add_export(sub)
    add_tune_parser(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``tfgan-app`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"tfgan-app {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
