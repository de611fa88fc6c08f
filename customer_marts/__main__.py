"""`python -m customer_marts`: the `customer-marts` command line (customer_marts/cli)."""

import sys

from customer_marts.cli import main

sys.exit(main())
