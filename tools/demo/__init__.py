"""The demo data: its generator (`generator`) and what its marker, `_demo.json`,
switches on (`marker`: the demo's default as-of date)."""
