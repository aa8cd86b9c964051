"""The torch-free core every layer builds on: errors, configs, artifacts, registries, progress, process pools."""
