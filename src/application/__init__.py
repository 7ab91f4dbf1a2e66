"""Use cases and the ports they need. Pure: no framework, no I/O of its own."""
