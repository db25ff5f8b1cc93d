"""The service layer: moves hashes and files through banks, indexes and matching."""
