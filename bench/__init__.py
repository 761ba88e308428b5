"""ictq's benchmark: ictq and its peers side by side (``make bench``, ``python -m bench``)."""
