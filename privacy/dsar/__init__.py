"""Data-subject requests (GDPR Arts. 12-22; PIPL Arts. 44-50).

This package holds the request model, its deadlines and `dsar_create`; working the requests
(access packages, erasure, rectification) is built on top of it.
"""
