"""What a run puts on disk: the results folder, saved nodes, the embedding cache, TREC files
and atomic writes."""
