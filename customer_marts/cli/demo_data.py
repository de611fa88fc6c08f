"""Write the demo exports (orders and their line items, survey responses and sends of
made-up customers, the marketing spend, and the demo's marker `_demo.json`) into
LANDING_DIR or --out. `customer-marts run --demo`
(`make demo`) writes them into an empty LANDING_DIR and runs on them.

    customer-marts demo --out /tmp/landing                # 5,000 customers
    customer-marts demo --out /tmp/landing --orders 1_000_000
"""

from __future__ import annotations

import argparse
from pathlib import Path

from customer_marts.cli.options import add_landing_dir, apply_folders


def configure(parser: argparse.ArgumentParser) -> None:
    add_landing_dir(parser)
    parser.add_argument("--out", type=Path, metavar="DIR", help="landing folder (= --landing-dir)")
    parser.add_argument(
        "--orders",
        type=lambda value: int(value.replace("_", "")),
        help="size the data for about this many orders (default: 5,000 customers)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (42)")


def main(args: argparse.Namespace) -> int:
    import logging

    from customer_marts.config import Settings
    from tools.demo.generator import DemoSpec, write_landing

    apply_folders(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = DemoSpec.for_orders(args.orders, args.seed) if args.orders else DemoSpec(seed=args.seed)
    landing = args.out or Settings.from_env().landing_dir
    write_landing(landing, spec)
    print(f"demo data written into {landing}")
    return 0
