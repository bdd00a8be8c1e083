"""The in-memory adapter: streams, queues, groups and retention in one process, for development."""
