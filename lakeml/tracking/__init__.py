"""Tracking: experiments, runs, the logging verbs, run artifacts and inputs (``lake.tracking``)."""
