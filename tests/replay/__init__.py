"""Tests of event replay: the library on both backends, the command line as subprocesses, REST."""
