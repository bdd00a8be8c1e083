"""Stream-name patterns of retention policies, and which policy applies to a stream: the values live in the store
layer (``sluice.store.values.retention_patterns``), since the storage port names them; this module keeps the
import path the doors, the operator and users' code use.
"""

from sluice.store.values.retention_patterns import (
    WILDCARD,
    HasPattern,
    Policy,
    matches,
    most_specific,
    specificity,
    validate_pattern,
)

__all__ = [
    "WILDCARD",
    "HasPattern",
    "Policy",
    "matches",
    "most_specific",
    "specificity",
    "validate_pattern",
]
