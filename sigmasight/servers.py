"""Real servers for the load test, the benchmarks and the tests: a gunicorn on a free loopback
port, and Celery worker processes on a private queue."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TextIO

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", "/api/v1/health/")
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


@contextmanager
def gunicorn(env: dict[str, str], *, workers: int, log: Path, start_s: float = 60) -> Iterator[int]:
    """gunicorn serving sigmasight.wsgi with `env`; yields its port once it answers HTTP (any
    status: a server whose database is down answers 503), stops it on exit."""
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "sigmasight.wsgi:application",
                f"--bind={HOST}:{port}",
                f"--workers={workers}",
                "--timeout=60",
                "--log-level=warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + start_s
            while not _answers(port):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}")
                time.sleep(0.2)
            yield port
        finally:
            stop([server])


def stop(processes: list[subprocess.Popen], timeout: float = 30) -> None:
    """Terminate the processes, and kill any still running after `timeout` seconds."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def celery_workers(
    env: dict[str, str],
    *,
    queue: str,
    hosts: tuple[str | None, ...] = (None,),
    pool: str = "prefork",
    concurrency: int = 1,
    log: Path | None = None,
) -> Iterator[list[subprocess.Popen]]:
    """Celery workers of the sigmasight app, one process per host name (None: Celery's own),
    taking tasks from `queue` one at a time (prefetch 1, so idle workers share a chord's
    chunks); their output goes to `log` (else nowhere). Stopped on exit."""
    workers: list[subprocess.Popen] = []
    with ExitStack() as opened:
        out: TextIO | int = (
            opened.enter_context(log.open("w")) if log is not None else subprocess.DEVNULL
        )
        opened.callback(stop, workers)
        for host in hosts:
            named = ["-n", host] if host else []
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "sigmasight",
                        "worker",
                        f"--pool={pool}",
                        f"--concurrency={concurrency}",
                        "--prefetch-multiplier=1",
                        *named,
                        "-Q",
                        queue,
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                        "--loglevel=WARNING",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        yield workers
