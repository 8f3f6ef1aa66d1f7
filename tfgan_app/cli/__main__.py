"""``python -m tfgan_app.cli``: the same as the ``tfgan-app`` command."""

import sys

from tfgan_app.cli import main

sys.exit(main())
