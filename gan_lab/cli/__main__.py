"""`python -m gan_lab.cli`: the same as the `gan-lab` console script."""

import sys

from gan_lab.cli import main

sys.exit(main())
