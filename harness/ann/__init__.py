"""ANN backends (flat, ivf, hnsw, annoy), one file each, and the build x search sweep that
measures them. Each backend imports its engine only when built; the registry imports every
module of this package."""
