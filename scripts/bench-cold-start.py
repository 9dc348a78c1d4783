#!/usr/bin/env python3
"""Cold start of each function: from the process's start to its first call
to the Lambda runtime API (`GET .../runtime/invocation/next`), which is when
Lambda considers its init done. The runtime API here is a minimal local one
(this script), as the local pipeline's control plane is: the function
connects to the real MariaDB and builds its AWS clients (pointed at an
unused endpoint: init makes no AWS call) exactly as it would in Lambda.

Usage: scripts/bench-cold-start.py [--bin-dir DIR] [--rounds N] [--zips DIR]
  --bin-dir  where the function binaries are (default target/release)
  --zips     where `cargo lambda build --release --output-format zip` put
             them (default target/lambda): each bootstrap.zip's size is printed
Prints one line per function: median, min and max in ms over the rounds.
"""

import argparse
import http.server
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

FUNCTIONS = [
    "load-attendance",
    "load-polls",
    "load-surveys",
    "load-qna",
    "load-presentations",
    "analytics-api",
    "erase-viewer",
    "backfill",
    "reconcile",
]


class FirstNext(http.server.BaseHTTPRequestHandler):
    """Records when the first `invocation/next` arrives, then holds it."""

    first_at = None
    seen = threading.Event()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.endswith("/runtime/invocation/next"):
            if FirstNext.first_at is None:
                FirstNext.first_at = time.perf_counter()
                FirstNext.seen.set()
            time.sleep(5)  # the function waits for work; it is killed first
        self.send_response(404)
        self.end_headers()

    def log_message(self, *_):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_start(binary, name, env):
    FirstNext.first_at = None
    FirstNext.seen.clear()
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), FirstNext)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    full = dict(env)
    full.update(
        {
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        }
    )
    started = time.perf_counter()
    process = subprocess.Popen(
        [binary], env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        if not FirstNext.seen.wait(timeout=20):
            err = process.stderr.read1(4000).decode(errors="replace") if process.poll() is not None else ""
            raise SystemExit(f"{name}: no call to the runtime API within 20 s. {err}")
        return (FirstNext.first_at - started) * 1000
    finally:
        process.kill()
        process.wait()
        server.shutdown()
        server.server_close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", default="target/release")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--zips", default="target/lambda")
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL") or os.environ.get(
        "TEST_DATABASE_URL", "mysql://root@127.0.0.1:3306/mysql"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": database_url,
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "DLQ_URL": "http://127.0.0.1:9/000000000000/dlq",
        "EXPORT_BUCKET": "exports",
        "EXPORT_PREFIX": "nightly/",
    }
    for dp in ["ATTENDANCE", "POLLS", "SURVEYS", "QNA", "PRESENTATION"]:
        env[f"QUEUE_URL_{dp}"] = f"http://127.0.0.1:9/000000000000/{dp.lower()}"
    print(f"{'function':<20} {'median ms':>10} {'min':>8} {'max':>8} {'zip MB':>8}")
    for name in FUNCTIONS:
        binary = os.path.join(args.bin_dir, name)
        if not os.path.exists(binary):
            sys.exit(f"{binary} is missing: build it with cargo build --release --bins")
        times = [one_start(binary, name, env) for _ in range(args.rounds)]
        zip_path = os.path.join(args.zips, name, "bootstrap.zip")
        size = f"{os.path.getsize(zip_path) / 1e6:.2f}" if os.path.exists(zip_path) else "-"
        print(
            f"{name:<20} {statistics.median(times):>10.1f} {min(times):>8.1f} {max(times):>8.1f} {size:>8}"
        )


if __name__ == "__main__":
    main()
