"""A fake PrestaShop webservice (HTTP, XML and JSON) for the demo, the tests and the benchmarks.

It stands beside the engine, not inside it: it imports nothing of ``engine`` and the client
(``engine.runtime.channels``) imports nothing of it (import-linter contracts in pyproject.toml).
"""

from __future__ import annotations
