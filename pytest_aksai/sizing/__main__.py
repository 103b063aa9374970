"""`python -m pytest_aksai.sizing fit|recommend|check ...` (see docs/explanation/sizing.md)."""

from __future__ import annotations

import sys

from pytest_aksai.sizing._cli import main

if __name__ == "__main__":
    sys.exit(main())
