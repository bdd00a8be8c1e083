"""The gRPC API of Sluice (package ``sluice.v1``): streams, consumer groups and queues over HTTP/2.

``build_grpc_server`` / ``create_server`` / ``run_grpc_server`` serve an EventStore; ``sluice serve``
(``sluice.serving.serve``) runs the gateway process; ``sluice.client`` is the Python client. See docs/grpc.md.
"""

from sluice.rpc.server import SluiceGrpcServer, build_grpc_server, create_server, run_grpc_server
from sluice.rpc.tls import TlsSettings

__all__ = ["SluiceGrpcServer", "TlsSettings", "build_grpc_server", "create_server", "run_grpc_server"]
