"""Writes a README block (`python benchmarks/metaeval_readme.py --help`).

The code lives in camscope.testing.metaeval_readme: the test that checks the block imports it from there.
"""

import sys

from camscope.testing.metaeval_readme import main

if __name__ == "__main__":
    sys.exit(main())
