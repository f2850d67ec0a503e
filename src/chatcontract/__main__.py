"""``python -m chatcontract``."""

import sys

from chatcontract.cli import main

sys.exit(main())
