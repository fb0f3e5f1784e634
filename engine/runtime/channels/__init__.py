"""Sales channels behind one typed port (``channels.port.ChannelPort``): what sync, the
outbox's effects and listing call, with neutral records in and out.

PrestaShop (``channels.prestashop``) is the first implementation, opened by name through
``channels.registry``; every failure is an ``engine.errors.ChannelError``.
"""

from __future__ import annotations

from engine.runtime.channels.port import ChannelPort

__all__ = ["ChannelPort"]
