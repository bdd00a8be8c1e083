"""The storage contracts that check their own arguments: abstract classes with one implementation per
adapter, bundled in the ``Backend`` (``store.backend.dead_letters``, ``.sagas``, ``.replays``).

Unlike the narrow protocols of ``store/port.py`` (whose input the facade and the services validate),
these take requests straight from the services and the doors, so their public methods validate and the
adapters implement the underscored or abstract ones.

Beside them, ``consumer_groups.py`` holds the protocols of what ``EventStore.consumer_groups()`` hands out
(the consumer-group service, which lives above the store layer and is given to the store when it is built).
"""
