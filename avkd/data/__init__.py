"""Corpora and features: the LRS2 layout, synthetic corpora, preprocessing into HDF5, datasets; CMU-MOSEI alike."""
