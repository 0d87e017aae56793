"""The container's health probe: `python -m bot.ops.probe [/livez]` exits 0 when that path answers 200.

The standard library only, so a probe costs a few milliseconds and needs no curl in the slim image.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

#: Seconds before the probe gives up (below the HEALTHCHECK's own --timeout).
TIMEOUT = 4.0


#: HEALTH_HOST values that listen everywhere, loopback included.
EVERYWHERE = {"", "0.0.0.0", "::", "[::]"}


def probe(path: str, port: str | None, host: str = "") -> int:
    """0 when GET http://host:port/path answers 200, else 1 (0 when there is no endpoint to ask).

    The host is HEALTH_HOST, or loopback when the server listens on every address.
    """
    if not port:
        print("HEALTH_PORT is not set: no endpoint to probe", file=sys.stderr)
        return 0
    host = "127.0.0.1" if host in EVERYWHERE else host
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    url = f"http://{host}:{port}/{path.lstrip('/')}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            return 0 if answer.status == 200 else 1
    except urllib.error.HTTPError as e:
        print(f"{url}: {e.code}", file=sys.stderr)
    except (OSError, ValueError) as e:
        print(f"{url}: {e}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Probe the path given (default /livez) on HEALTH_PORT."""
    args = list(sys.argv[1:] if argv is None else argv)
    path = args[0] if args else "/livez"
    return probe(path, os.environ.get("HEALTH_PORT"), os.environ.get("HEALTH_HOST", "").strip())


if __name__ == "__main__":
    sys.exit(main())
