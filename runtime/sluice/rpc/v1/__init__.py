"""Version 1 of the gRPC API: stubs generated from ``proto/sluice/rpc/v1/sluice.proto``
by ``scripts/generate_grpc_stubs.py`` (do not edit the ``*_pb2*`` files by hand)."""
