#!/usr/bin/env python3
"""Cold start of each function: from the process's start to its first call
to the Lambda runtime API (`GET .../runtime/invocation/next`), which is when
Lambda considers its init done. The function talks to the local control plane
(`cargo lambda watch --only-lambda-apis`, as the local pipeline runs it)
through a relay in this script that notes when the first `next` arrives; the
function connects to the real MariaDB and builds its AWS clients (pointed at
an unused endpoint: init makes no AWS call) exactly as it would in Lambda.

Usage: scripts/bench-cold-start.py [--bin-dir DIR] [--rounds N] [--zips DIR]
  --bin-dir  where the function binaries are (default target/release)
  --zips     where `cargo lambda build --release --arm64 --output-format zip`
             put them (default target/lambda): each bootstrap.zip's size is
             printed
Prints one line per function: median, min and max in ms over the rounds.
"""


import argparse
import http.client
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


class Relay(http.server.BaseHTTPRequestHandler):
    """Relays every request to the control plane; notes when the first
    `invocation/next` arrives."""

    control_plane = None
    first_at = None
    seen = threading.Event()

    def relay(self, method):
        if self.path.endswith("/runtime/invocation/next") and Relay.first_at is None:
            Relay.first_at = time.perf_counter()
            Relay.seen.set()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(Relay.control_plane, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            upstream.request(method, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (OSError, http.client.HTTPException):
            pass  # the function was killed while it waited for work
        finally:
            upstream.close()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.relay("GET")

    def do_POST(self):  # noqa: N802
        self.relay("POST")

    def log_message(self, *_):
        pass


def start_control_plane():
    """`cargo lambda watch --only-lambda-apis` from the project virtualenv on a
    free port; returns (process, "127.0.0.1:PORT")."""
    venv = os.environ.get("WAREHOUSE_VENV", os.path.join(os.path.dirname(__file__), "..", ".venv"))
    program = os.path.join(venv, "bin", "cargo-lambda")
    if not os.path.exists(program):
        sys.exit(f"{program} is missing: run scripts/setup.sh")
    port = free_port()
    process = subprocess.Popen(
        [program, "lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    sys.exit("cargo lambda watch did not listen within 60 s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_start(binary, name, env, relay_port):
    Relay.first_at = None
    Relay.seen.clear()
    full = dict(env)
    full.update(
        {
            "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{relay_port}/.rt/{name}",
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
        if not Relay.seen.wait(timeout=20):
            err = process.stderr.read1(4000).decode(errors="replace") if process.poll() is not None else ""
            raise SystemExit(f"{name}: no call to the runtime API within 20 s. {err}")
        return (Relay.first_at - started) * 1000
    finally:
        process.kill()
        process.wait()


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
    control, Relay.control_plane = start_control_plane()
    relay = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Relay)
    relay.daemon_threads = True
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    relay_port = relay.server_address[1]
    print(f"{'function':<20} {'median ms':>10} {'min':>8} {'max':>8} {'zip MB':>8}")
    for name in FUNCTIONS:
        binary = os.path.join(args.bin_dir, name)
        if not os.path.exists(binary):
            sys.exit(f"{binary} is missing: build it with cargo build --release --bins")
        times = [one_start(binary, name, env, relay_port) for _ in range(args.rounds)]
        zip_path = os.path.join(args.zips, name, "bootstrap.zip")
        size = f"{os.path.getsize(zip_path) / 1e6:.2f}" if os.path.exists(zip_path) else "-"
        print(
            f"{name:<20} {statistics.median(times):>10.1f} {min(times):>8.1f} {max(times):>8.1f} {size:>8}"
        )
    relay.shutdown()
    control.kill()
    control.wait()


if __name__ == "__main__":
    main()
