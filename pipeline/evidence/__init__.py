"""The evidence store and the signed validation record (in-toto Statement + SLSA VSA in DSSE).

``statement`` and ``dsse`` are pure; ``store`` plans uploads; ``verify`` checks a record.
"""
