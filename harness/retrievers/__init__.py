"""First-stage retrievers, one file each; each registers itself with harness.core.registry."""
