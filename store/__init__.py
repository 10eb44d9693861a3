"""The customer store: the ``CustomerRepository`` contract, MongoDB and in-memory implementations.

See docs/storage.md for the collections, their indexes and why the write order is safe.
"""
