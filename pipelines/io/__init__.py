"""Readers of listings, one per format. Each returns frames of the columns as the file holds
them; :mod:`pipelines.schema` conforms and validates them."""
