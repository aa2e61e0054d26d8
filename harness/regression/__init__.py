"""Regression checks: compare a results folder with a baseline or the config's `expect:` blocks.

`harness check` and `harness baseline` live in `cli.py`; the format is in docs/regression.md.
"""
