"""Job modules of every benchmarked system (imported by their workers)."""
