"""CMU-MOSEI: SDK ``.csd`` files and MulT pickles, the ingest into HDF5, the dataset, the check, synthetic data."""
