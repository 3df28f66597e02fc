"""`python -m reflow.cli`: the `reflow` command."""

import sys

from reflow.cli.app import main

sys.exit(main())
