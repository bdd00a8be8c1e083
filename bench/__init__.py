"""Sluice's benchmarks: ``./dev bench`` (or ``python -m bench``) runs them on one throwaway,
durable PostgreSQL and prints Sluice's figures next to a raw-asyncpg baseline measured in the same run."""
