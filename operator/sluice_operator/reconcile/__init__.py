"""Pure reconcile logic: what a spec means (desired children, desired status, conditions), without I/O.

Every function here takes plain values (parsed models, dictionaries read from the API server or the
database) and returns plain values, so it is unit-tested without Kubernetes or PostgreSQL. The
``sluice_operator.controllers`` modules do the reading and writing around it.
"""
