"""Labelled clip corpora (VGGSound, AudioSet): label CSVs, the synthetic corpus, preprocessing into HDF5 parts, the dataset."""
