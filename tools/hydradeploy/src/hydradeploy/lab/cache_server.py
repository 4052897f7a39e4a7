"""The lab's binary cache server (run as a script, standard library only).

Serves a `file://` binary cache directory over HTTP on the lab bridge's address, which
every lab host reaches; Nix's http binary cache store only GETs (and HEADs) files by
their relative path: `nix-cache-info`, `HASH.narinfo`, `nar/…` (Nix 2.8
src/libstore/http-binary-cache-store.cc, `getFile`/`fileExists`). It prints
"listening PORT", logs one line per request to stderr, and exits by itself once its lab
is gone (the bridge deleted or lab.json removed): a lab torn down without its lab.json
leaves no server behind.

    python3 -I cache_server.py CACHE_DIR ADDRESS PORT BRIDGE LAB_JSON
"""

from __future__ import annotations

import functools
import http.server
import os
import sys
import threading
import time
from pathlib import Path


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.address_string()} {format % args}\n")
        sys.stderr.flush()


def watch(server: http.server.ThreadingHTTPServer, bridge: str, lab_json: Path) -> None:
    while Path(f"/sys/class/net/{bridge}").exists() and lab_json.exists():
        time.sleep(1)
    server.shutdown()


def main(cache_dir: Path, address: str, port: int, bridge: str, lab_json: Path) -> int:
    handler = functools.partial(Handler, directory=str(cache_dir))
    server = http.server.ThreadingHTTPServer((address, port), handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    sys.stdout.close()
    threading.Thread(target=watch, args=(server, bridge, lab_json), daemon=True).start()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], Path(sys.argv[5])))
