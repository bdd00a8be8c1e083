"""Reconcilers: for each kind, read the object and its surroundings, call the pure functions of
``sluice_operator.reconcile``, apply the children and write the status. Called by the kopf handlers on
changes and by the periodic resync (``sluice_operator.resync``)."""
