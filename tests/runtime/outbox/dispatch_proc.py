"""One real outbox dispatcher in its own process, for the multi-process race tests.

``python -m tests.runtime.outbox.dispatch_proc DATABASE_URL OWNER BATCH`` builds the
production ``Dispatcher`` with ``outbox.open_dispatcher`` (as ``omsflow outbox run`` does),
prints ``ready``, runs ``run_forever`` polling every 5 ms until SIGTERM, and prints its
``DispatchStats`` as one JSON line. A small ``batch`` splits one order's rows across the
batches two processes lease at the same moment: the case the lane lock exists for.
"""

from __future__ import annotations

import json
import signal
import sys
import threading

from engine.runtime.outbox import open_dispatcher
from engine.runtime.settings import Settings


def main(argv: list[str]) -> int:
    url, owner, batch = argv[0], argv[1], int(argv[2])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open_dispatcher(
        Settings(database_url=url), owner=owner, batch=batch, concurrency=4
    ) as dispatcher:
        print("ready", flush=True)
        stats = dispatcher.run_forever(stop, idle_sleep=0.005)
    print(json.dumps(stats.as_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
