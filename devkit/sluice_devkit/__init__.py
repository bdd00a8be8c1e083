"""Sluice's dev kit: the local platform that ``./dev demo`` and the tests run (embedded PostgreSQL, a control
plane and a real node built from Go modules, KEDA, Argo CD, the operator as a process or a pod).

It is a source root of its own (``devkit/``), beside ``runtime/`` and ``operator/``: ``./dev`` and the tests
import it through the editable install, and neither the wheel nor the image ships it (nor its dependencies,
such as ``cryptography`` for the control plane's certificates). ``sluice`` and ``sluice_operator`` never import
it (import-linter, ``pyproject.toml``).
"""
