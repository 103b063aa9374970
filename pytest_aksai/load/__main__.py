"""`python -m pytest_aksai.load run --url URL --model NAME --concurrency N --duration S`."""

import sys

from pytest_aksai.load._cli import main

sys.exit(main())
