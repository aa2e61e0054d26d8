"""Evaluation: measures with trec_eval semantics (metrics), latency and memory measurement (timing)
and the `harness eval` command (cli). Import the submodule you need; each pulls only its own deps."""
