"""Reports: tables and figures from evaluation artifacts."""
