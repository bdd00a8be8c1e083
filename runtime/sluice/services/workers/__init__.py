"""Long-running worker processes built on the runtime: the consumer-group worker behind
``sluice consume``, with its health and metrics endpoint and JSON logging."""
