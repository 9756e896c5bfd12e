"""Helpers shared by the tracking tests and the scripts they run as subprocesses."""
