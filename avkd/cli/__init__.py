"""The ``avkd`` command line: one module per command group, parsing and printing only."""
