"""Benchmarks at 1M and 10M orders: `make bench`, i.e. `python -m bench` (`--scale small` to try it out in minutes).

Writes bench/results.json and BENCHMARKS.md (bench/harness.py explains each figure; bench/ holds one module per part of the measurement).
"""

import argparse
import logging
from pathlib import Path

from bench.harness import SCALES, Context, run
from customer_marts.config import PROJECT_ROOT


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="measure at once instead of waiting for a quiet machine (load average < 1.5)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for results.json and BENCHMARKS.md (default: bench/ and the project "
        "root at full scale, bench/data/<scale>/ otherwise)",
    )
    parser.add_argument(
        "--keep-runs", action="store_true", help="keep bench/data/runs/ (logs, warehouses)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    root = PROJECT_ROOT / "bench"
    if args.out:
        results, markdown = args.out / "results.json", args.out / "BENCHMARKS.md"
    elif args.scale == "full":
        results, markdown = root / "results.json", PROJECT_ROOT / "BENCHMARKS.md"
    else:
        results = root / "data" / args.scale / "results.json"
        markdown = results.with_name("BENCHMARKS.md")
    context = Context(
        root=root,
        data_dir=root / "data",
        results_path=results,
        markdown_path=markdown,
        scale=SCALES[args.scale],
        wait=not args.no_wait,
        keep_runs=args.keep_runs,
    )
    run(context)


if __name__ == "__main__":
    main()
