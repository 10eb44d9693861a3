"""Topic names, partitioning, codecs and dead-letter routing."""
