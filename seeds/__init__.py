"""Seed data: the default brand registry and the sample-marketplace generator."""
