"""Writes a README block (`python benchmarks/compat_table.py --help`).

The code lives in camscope.testing.compat_table: the test that checks the block imports it from there.
"""

import sys

from camscope.testing.compat_table import main

if __name__ == "__main__":
    sys.exit(main())
