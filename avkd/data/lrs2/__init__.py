"""LRS2: the corpus layout and its check, the synthetic corpus, preprocessing into HDF5 parts, the sync dataset."""
