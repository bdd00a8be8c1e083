"""Storage backends: PostgreSQL for production, memory for development."""
