"""Services over the storage port: groups, group commit, projections, sagas, replay, retention, workers."""
