"""Metadata filters: the config syntax (`spec`), their check against a dataset and per-query
allowed sets (`allowed`), and which backends apply them how (`support`). See docs/filters.md."""
