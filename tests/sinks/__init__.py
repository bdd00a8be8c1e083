"""Tests of the HTTP sink, handlers, retries, dead-lettering and the consumer worker."""
