"""``python -m containai`` runs the ``cai`` command line."""

from __future__ import annotations

import sys

from containai.cli import main

if __name__ == "__main__":
    sys.exit(main())
