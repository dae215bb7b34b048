"""Data: video I/O, the synthetic video world, official data-set formats and curation."""
