"""Tests of the ``sluice`` command line, run as real subprocesses."""
