"""Sluice's Kubernetes operator."""
