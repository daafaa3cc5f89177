"""Platform add-ons, one module each; every pinned version lives in `versions.py`."""
