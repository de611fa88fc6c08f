"""The benchmark harness (`harness`, run by `make bench`) and the gate-route benchmark
(`gate_bench`). Not part of the product: nothing in `customer_marts` or `dags` imports it.
Results stay in bench/results.json."""
