"""The fault-injection suite: PostgreSQL killed, restarted, its backends terminated or frozen, and
members frozen or duplicated, under real producers, consumers and servers (docs/faults.md)."""
