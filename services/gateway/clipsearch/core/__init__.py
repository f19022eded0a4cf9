"""The leaf of the package: settings, logging set-up, metric types, the error kinds and
the collection-name rule.

Nothing here imports the adapters (encoder, store, jobs), the use-cases or the HTTP layer;
``tests/unit/test_layers.py`` holds it to that. The wiring lives in :mod:`clipsearch.bootstrap`.
"""
