"""The live terminal dashboard (``orchestrator dashboard``): a Textual app over the log store.

Modules: ``summary`` (the header's one SQL call), ``source`` (where the tail's rows come
from), ``state`` (what the user chose and where the tail stands; pure), ``poller`` (the
database work, off the UI thread), ``render`` (a row as coloured text), ``widgets`` and
``app``.
"""
