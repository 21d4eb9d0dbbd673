"""The store: what a measurement is (records.py: the Record schema, reading, writing, upgrading, the results file's
safety rules) and the table of measured quantities every stage names them by (metrics.py).

Everything below the analysis reads and writes through here; it imports nothing of effprof but the config keys
(effprof.config). ARCHITECTURE.md § Records.
"""
