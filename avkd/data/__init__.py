"""Corpora, media decoding, HDF5 storage and datasets."""
