"""The parts ``sluice serve`` (``sluice.serving.serve``) is assembled from: waiting for the database, the HTTP
listeners (TLS, the plain health port), the gRPC server's stand-in while the database is not ready, and
shutdown steps with time limits."""
