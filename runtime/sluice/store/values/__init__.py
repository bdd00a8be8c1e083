"""The values the storage port names: what consumer groups, retention, sagas, replays and group dead
letters store and return (plain dataclasses and validated models, no I/O).

They live in the store layer because the port (``store/port.py``) and the storage contracts
(``store/contracts/``) take and return them; the services, the adapters and the doors import them from
here (each service package re-exports the ones its users know).
"""
