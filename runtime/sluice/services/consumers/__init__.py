"""Consumer groups: many workers share a stream's partitions, with fenced commits and lag."""
