"""`python -m liifsr ...`, which is also how torchrun starts distributed training."""

import sys

from liifsr import main

sys.exit(main())
