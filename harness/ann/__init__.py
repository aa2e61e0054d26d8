"""ANN backends (flat, ivf, hnsw, annoy) and the build x search sweep that measures them."""
