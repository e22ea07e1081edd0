"""Transports for the outside services; only the Context builds the shared ones."""
