"""Local development and test infrastructure for the Sluice operator."""
