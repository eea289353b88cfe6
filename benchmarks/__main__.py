"""python -m benchmarks (inside benchmarks/.venv); benchmarks/run.py makes that venv first."""

import sys

from .cli import main

sys.exit(main())
