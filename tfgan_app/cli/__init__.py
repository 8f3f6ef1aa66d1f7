"""The ``tfgan-app`` command line: ``train``, ``presets``, ``sample``, ``evaluate``, ``export``
and ``tune``, one module per group of subcommands.

``tfgan-app train`` with no arguments trains the default preset into ``runs/<preset>``. A
user's mistake (a bad setting, a missing or wrong file, a run directory locked by another
``train``) prints one line naming it and exits with status 2, without a traceback
(``--debug`` shows it). Exit status 3: training stopped on NaN or infinite values;
130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


#: Subcommands whose parser comes from a module that imports TensorFlow (keras-tuner): built
#: only when that command runs; otherwise a stub with its one-line help lists it, so that
#: ``--help``, ``presets`` and ``train``'s start-up import neither TensorFlow nor matplotlib
#: (``tests/test_bookkeeping.py`` checks ``sys.modules``).
_HEAVY = {"tune": "hyperparameter search with keras-tuner (writes best.json for train)"}


def _command(argv) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv=None) -> argparse.ArgumentParser:
    """The ``tfgan-app`` parser; with ``argv``, the subcommands of :data:`_HEAVY` other than
    ``argv``'s command are stubs (their modules are not imported)."""
    from tfgan_app.cli import runs, train

    command = None if argv is None else _command(argv)

    parser = argparse.ArgumentParser(
        prog="tfgan-app", description="Train, sample, evaluate and export GANs (Keras 3 + TF-GAN)")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    train.add_train(sub)
    train.add_presets(sub)
    runs.add_sample(sub)
    runs.add_evaluate(sub)
    runs.add_export(sub)
    from tfgan_app.cli.doctor import add_doctor

    add_doctor(sub)
    if argv is None or command == "tune":
        from tfgan_app.cli.tune import add_tune_parser

        add_tune_parser(sub)
    else:
        for name, text in _HEAVY.items():
            sub.add_parser(name, help=text, add_help=False)
    for p in sub.choices.values():  # `tfgan-app train ... --debug` works too
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")
    return parser


#: Exit statuses besides 0 (success) and 1 (an unexpected error, with its traceback).
USER_ERROR, NON_FINITE, INTERRUPTED = 2, 3, 130


def _user_errors() -> tuple:
    from tfgan_app.rundir import RunLockedError

    return (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
            IsADirectoryError, PermissionError, RunLockedError)


def _one_line(e: BaseException) -> str:
    return " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or repr(e)


def main(argv=None) -> int:
    """Entry point of the ``tfgan-app`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"tfgan-app {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as e:  # noqa: BLE001 -- sorted below; anything else is re-raised
        from tfgan_app.utils import NonFiniteError

        if isinstance(e, NonFiniteError):
            status = NON_FINITE
        elif isinstance(e, _user_errors()):
            status = USER_ERROR
        else:
            raise
        if args.debug:
            traceback.print_exc()
        print(f"tfgan-app {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
