"""Core types every stage shares: documents and runs, the stage protocols and optional
capabilities, the plugin registry, errors, the run context, hashing and model resolution."""
