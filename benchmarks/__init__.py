"""Gateway-versus-direct benchmark: ``python -m benchmarks.run`` (``make bench``)."""
