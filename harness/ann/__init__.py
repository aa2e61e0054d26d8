"""ANN backends (flat, ivf, hnsw, annoy) and the build x search sweep that measures them.

Importing the package registers every backend; each imports its engine only when built.
"""
from . import annoy_index, flat, hnsw, ivf  # noqa: F401  (registration side effect)
