"""Write the demo exports into LANDING_DIR (or --out): `python scripts/generate_demo_data.py`."""

import argparse
import logging
from pathlib import Path

from customer_marts.config import Settings
from tools.demo.generator import DemoSpec, write_landing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="landing folder (default: LANDING_DIR)")
    parser.add_argument(
        "--orders",
        type=lambda v: int(v.replace("_", "")),
        help="size the data for about this many orders (default: 5,000 customers)",
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = DemoSpec.for_orders(args.orders, args.seed) if args.orders else DemoSpec(seed=args.seed)
    write_landing(args.out or Settings.from_env().landing_dir, spec)


if __name__ == "__main__":
    main()
