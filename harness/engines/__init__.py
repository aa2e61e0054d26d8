"""Adapters for external engines whose setup needs care (the Lucene JVM)."""
