"""Mitto SMS: the production gateway, a development simulator, a fake server and report parsing."""
