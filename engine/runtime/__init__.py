"""The IO edge: storage, channel adapters, outbox, scheduler, servers.

``cli.py`` talks to this layer only. Sub-packages: ``db`` (SQLAlchemy models, sessions,
repositories), ``channels`` (adapters; PrestaShop over httpx), ``sandbox`` (a PrestaShop
webservice double), ``wms`` (signed WMS webhooks), ``fulfilment`` (AWB, labels),
``listing`` (product creation and the Excel template).
"""

from __future__ import annotations
