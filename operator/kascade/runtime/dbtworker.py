"""`python -m kascade.runtime.dbtworker [--vars JSON] [--threads N]`: a warm dbt worker, one
long-lived process per project, warehouse and vars that parses the project once and runs
the dbt resources it is asked for concurrently, one thread per request (dbtsession.py).

It speaks JSON lines. stdout carries only these events (dbt's console output goes to each
request's log, anything else to stderr, the worker's log):
- `{"event": "ready"}` once set up, or `{"event": "failed", "message": ...}` and exit 2;
- `{"event": "done", "id", "exit", "message", "outputs"}` when a request ends, with the exit
  codes, messages and outputs of the one-shot runtime (`python -m kascade.runtime`); 143
  and "<kind> `<name>` stopped" for a cancelled request.
stdin carries the requests:
- `{"op": "run", "id", "kind", "name", "args", "log"}`: run a task (args as the one-shot
  runtime takes them), its dbt output appended to the file `log`;
- `{"op": "cancel", "id"}`: cancel a running request (its query too); unknown ids are a no-op.
EOF on stdin cancels what still runs, answers for it and exits 0; SIGTERM does the same and
exits 143. The environment is a task's (KASCADE_PROJECT, KASCADE_WAREHOUSE), without its
per-attempt variables.
"""

from __future__ import annotations

import argparse
import contextvars
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any

from kascade.runtime import contract
from kascade.runtime.dbtworker_protocol import (
    Cancel,
    Channel,
    Refused,
    Run,
    done,
    note,
    read_request,
)
from kascade.runtime.errors import TaskError

DEFAULT_THREADS = 8
CANCEL_EVERY_SECONDS = 0.2
# A cancelled request that has not unwound by then is answered all the same.
GRACE_SECONDS = 10.0


class _Terminate(BaseException):
    """SIGTERM reached the main thread (BaseException: nothing on the way swallows it)."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminate


@dataclass
class _Request:
    """A request the worker has accepted and not yet answered."""

    id: str
    kind: str
    name: str
    stop: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    answered: bool = False

    @property
    def stopped(self) -> str:
        return f"{self.kind} `{self.name}` stopped"


class Worker:
    """Accepts requests, runs each in a thread of its own (at most `threads` at once) and
    answers each exactly once."""

    def __init__(self, session: Any, channel: Channel, threads: int) -> None:
        self.session = session
        self.channel = channel
        self.requests: dict[str, _Request] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(threads)

    def serve(self, lines: Iterable[str]) -> None:
        """Handle request lines until EOF."""
        for line in lines:
            request = read_request(line) if line.strip() else None
            if isinstance(request, Cancel):
                self.cancel(request.id)
            elif request is not None:
                self.start(request)

    def start(self, order: Run | Refused) -> None:
        with self._lock:
            if order.id in self.requests:
                note(f"request {order.id} is running already; ignored")
                return
            request = _Request(order.id, order.kind, order.name)
            self.requests[order.id] = request
        if isinstance(order, Refused):
            self._answer(request, 2, order.message, {})
            request.finished.set()
            return
        # the request's thread starts in the worker's context: dbt's invocation context
        context = contextvars.copy_context()
        request.thread = threading.Thread(
            target=context.run, args=(self._run, request, order), name=f"dbt-{order.id}"
        )
        request.thread.daemon = True
        request.thread.start()

    def _run(self, request: _Request, order: Run) -> None:
        try:
            self._answer(request, *self._outcome(request, order))
        finally:
            request.finished.set()

    def _outcome(self, request: _Request, order: Run) -> tuple[int, str | None, dict[str, Any]]:
        """Exit code, message and outputs of a request, as the one-shot runtime's; its
        error line also ends its log, as the one-shot runtime's stderr ends a task's."""
        from kascade.runtime.outputs import encode_outputs

        try:
            log = open(order.log, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        except OSError as err:
            return 2, f"{order.kind} `{order.name}`: cannot write its log {order.log}: {err}", {}
        with log:
            try:
                outputs = self._execute(request, order, log)
                encode_outputs(outputs)  # the limits the one-shot runtime applies
                return 0, None, outputs
            except TaskError as err:
                log.write(f"error: {err}\n")
                return err.exit_code, str(err), {}
            except Exception as err:  # a bug of ours or dbt's: one line, the worker goes on
                note(f"request {order.id} failed:\n{traceback.format_exc()}")
                log.write(f"error: dbt worker error: {err}\n")
                return 1, f"{order.kind} `{order.name}`: dbt worker error: {err}", {}

    def _execute(self, request: _Request, order: Run, log: IO[str]) -> dict[str, Any]:
        from kascade.runtime.dbtsession import Stopped

        while not self._slots.acquire(timeout=CANCEL_EVERY_SECONDS):
            if request.stop.is_set():
                raise Stopped(request.stopped)
        try:
            if request.stop.is_set():
                raise Stopped(request.stopped)
            outputs: dict[str, Any] = self.session.run(
                order.kind, order.name, order.args, log, request.stop
            )
            return outputs
        finally:
            self._slots.release()

    def _answer(
        self, request: _Request, code: int, message: str | None, outputs: dict[str, Any]
    ) -> None:
        """Send a request's `done` event, once: a cancelled request that does not unwind in
        time is answered by its watchdog, and then not again by its thread."""
        with self._lock:
            if request.answered:
                return
            self.channel.send(done(request.id, code, message, outputs))
            request.answered = True
            self.requests.pop(request.id, None)

    def cancel(self, key: str) -> None:
        """Stop a request: no further node starts, and its query is cancelled until its
        thread has unwound (a query its thread had not sent yet is caught next round)."""
        with self._lock:
            request = self.requests.get(key)
        if request is None or request.stop.is_set():
            return
        request.stop.set()
        threading.Thread(target=self._watch, args=(request,), daemon=True).start()

    def _watch(self, request: _Request) -> None:
        deadline = time.monotonic() + GRACE_SECONDS
        while not request.finished.wait(CANCEL_EVERY_SECONDS):
            if request.thread is not None:
                self.session.cancel(request.thread)
            if time.monotonic() > deadline:
                note(f"request {request.id} did not stop within {GRACE_SECONDS:.0f} s")
                self._answer(request, 143, request.stopped, {})
                return

    def shutdown(self) -> None:
        """Cancel what still runs and wait for the answers (a request stuck past the grace
        period is answered by its watchdog)."""
        with self._lock:
            running = list(self.requests.values())
        for request in running:
            self.cancel(request.id)
        deadline = time.monotonic() + GRACE_SECONDS + 1
        for request in running:
            while not request.answered and time.monotonic() < deadline:
                request.finished.wait(CANCEL_EVERY_SECONDS)


def _options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kascade.runtime.dbtworker")
    parser.add_argument("--vars", default=None, help="dbt vars (YAML or JSON) of every request")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    options = parser.parse_args(argv)
    if options.threads < 1:
        parser.error("--threads must be at least 1")
    return options


def main(argv: list[str]) -> int:
    """Set up, serve requests until EOF or SIGTERM, then end what runs; the exit code."""
    options = _options(argv)
    channel = Channel.take_stdout()
    signal.signal(signal.SIGTERM, _on_sigterm)
    session = None
    code = 0
    try:
        session = _open_session(options, channel)
        if session is None:
            return 2
        worker = Worker(session, channel, options.threads)
        channel.send({"event": "ready"})
        try:
            worker.serve(sys.stdin)
        except _Terminate:
            code = 143
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ending already
        worker.shutdown()
    except _Terminate:
        return 143
    finally:
        if session is not None:
            session.close()
    return code


def _open_session(options: argparse.Namespace, channel: Channel) -> Any:
    from kascade.runtime.dbtsession import Session, SessionError

    try:
        return Session(
            contract.project_dir(), contract.warehouse_url(), options.vars, options.threads
        )
    except SessionError as err:
        channel.send({"event": "failed", "message": str(err)})
        return None


def _exit_now(code: int) -> None:
    """End the process after its exit handlers (multiprocessing's, dbt-duckdb's) but
    without the interpreter's teardown: by now the warehouse and the protocol are closed,
    threads still inside dbt or DuckDB would keep the process (or crash it at exit), and
    tearing down dbt's modules costs a third of a second."""
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main(sys.argv[1:]))
