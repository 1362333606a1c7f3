"""Identifier normalisation, blind-index lookup and the identity graph (merge, unmerge)."""
