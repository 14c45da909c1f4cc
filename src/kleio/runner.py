"""The runner: run a command as a child, tee and journal its output, serve its client.

Three threads, one job each:

* the **main thread** spawns the child and waits for signals with ``sigtimedwait``: SIGCHLD
  ends the run, a signal sent by another process is forwarded, a timeout is a heartbeat;
* the **I/O thread** copies the child's stdout/stderr to the terminal as they come and cuts
  them into lines, and reads the clients' statistics and artifacts from the channel;
* the **writer thread** owns the store: it numbers events, writes them in batches, answers
  queries, and spools to a local file whenever the store fails, replaying it when it returns.

A storage failure never changes the child's exit code: the writer catches everything.
"""

from __future__ import annotations

import json
import os
import queue
import selectors
import signal
import socket
import sys
import tempfile
import threading
import time
from itertools import repeat
from typing import Any

from kleio.spool import Spool
from kleio.storage.base import NewEvent, Store, encode

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2)
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
WAITED = set(FORWARDED) | {signal.SIGCHLD, signal.SIGWINCH}
SI_USER, SI_QUEUE = 0, -1

MAX_LINE = 1 << 16
BATCH = 5000
DRAIN_AFTER_EXIT = 2.0
DUPLICATE_WINDOW = 0.2


def _warn(message: str) -> None:
    try:
        sys.stderr.write(f"kleio: warning: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class LineCutter:
    """Cut a byte stream into journal lines.

    Carriage-return progress updates are coalesced: only the text after the last ``\\r`` of a
    line is kept. Undecodable bytes survive as lone surrogates (``surrogateescape``).
    """

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> list[str]:
        data = self.pending + data
        parts = data.split(b"\n")
        self.pending = parts.pop()
        # A progress bar that never prints a newline must not grow the buffer forever.
        cut = self.pending.rfind(b"\r", 0, len(self.pending) - 1)
        if cut >= 0:
            self.pending = self.pending[cut + 1:]
        lines = [self._decode(part) for part in parts]
        while len(self.pending) > MAX_LINE:
            lines.append(self._decode(self.pending[:MAX_LINE]))
            self.pending = self.pending[MAX_LINE:]
        return lines

    def flush(self) -> list[str]:
        rest, self.pending = self.pending, b""
        return [self._decode(rest)] if rest else []

    @staticmethod
    def _decode(raw: bytes) -> str:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if b"\r" in raw:
            raw = raw.rsplit(b"\r", 1)[1]
        return raw.decode("utf-8", "surrogateescape")


class Writer(threading.Thread):
    """The only thread that talks to the store."""

    def __init__(self, store: Store, trial_id: str, next_seq: int, spool: Spool,
                 flush_interval: float) -> None:
        super().__init__(name="kleio-writer", daemon=True)
        self.store = store
        self.trial_id = trial_id
        self.next_seq = next_seq
        self.spool = spool
        self.flush_interval = flush_interval
        # Bounded: when the store is slower than the program, the I/O thread blocks, the
        # socket buffer fills, and the program waits instead of memory growing.
        self.queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=16)
        self.pending: list[NewEvent] = []
        self.store_ok = True
        self.last_retry = 0.0
        self.retry_interval = 2.0
        self.written = 0
        self.child_pid: int | None = None
        self.stop_request: dict[str, Any] | None = None
        self.runner_info: dict[str, Any] = {}
        self.displaced: dict[str, Any] | None = None

    # -- API used by the other threads ----------------------------------------------------

    def events(self, kind: str, when: float, datas: list[str]) -> None:
        self.queue.put(("events", kind, when, datas))

    def call(self, op: str, *args: Any) -> None:
        self.queue.put((op, *args))

    # -- the thread -----------------------------------------------------------------------

    def run(self) -> None:
        deadline: float | None = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self.queue.get(timeout=timeout)
            except queue.Empty:
                self.flush()
                deadline = None
                continue
            op = item[0]
            if op == "events":
                _, kind, when, datas = item
                seq = self.next_seq
                self.next_seq = seq + len(datas)
                self.pending.extend(
                    zip(range(seq, self.next_seq), repeat(kind), repeat(when), datas))
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.flush_interval
                if len(self.pending) >= BATCH or now >= deadline:
                    self.flush()
                    deadline = None
                continue
            self.flush()
            deadline = None
            if op == "stop":
                return
            try:
                getattr(self, "_op_" + op)(*item[1:])
            except Exception as error:  # storage must never kill the run
                _warn(f"journal operation {op!r} failed: {error}")

    def flush(self) -> None:
        if not self.pending:
            if not self.store_ok:
                self._retry()
            return
        batch, self.pending = self.pending, []
        if self.store_ok:
            try:
                self.store.append_events(trial_id=self.trial_id, events=batch)
                self.written += len(batch)
                return
            except Exception as error:
                self._down(error)
        self.spool.add_events(batch)
        self._retry()

    def _down(self, error: BaseException) -> None:
        if self.store_ok:
            _warn(f"the journal is unavailable ({error}); events are kept in "
                  f"{self.spool.path} and replayed when it returns")
        self.store_ok = False
        self.last_retry = time.monotonic()

    def _retry(self, force: bool = False) -> None:
        if not force and time.monotonic() - self.last_retry < self.retry_interval:
            return
        self.last_retry = time.monotonic()
        try:
            self.spool.replay(self.store)
        except Exception:
            return
        if not self.store_ok:
            _warn("the journal is back; spooled events were replayed")
        self.store_ok = True

    def _fields(self, fields: dict[str, Any]) -> None:
        if self.displaced is not None:
            return  # the trial's document now describes its new runner's execution
        if self.store_ok:
            try:
                self.store.update_trial(trial_id=self.trial_id, fields=fields)
                return
            except Exception as error:
                self._down(error)
        self.spool.add_fields(fields)

    def _op_heartbeat(self, when: float) -> None:
        self._fields({"heartbeat_at": when})
        if not self.store_ok:
            self._retry()
            return
        # `kleio stop ID`, from any machine sharing the journal, asks through the trial's
        # document; the runner answers at its next heartbeat by stopping the program.
        try:
            doc = self.store.get_trial(trial_id=self.trial_id) or {}
        except Exception as error:
            self._down(error)
            return
        request = doc.get("stop_requested")
        if request and self.stop_request is None and self.child_pid is not None:
            self.stop_request = dict(request)
            _kill(self.child_pid, signal.SIGTERM)
        holder = doc.get("runner") or {}
        mine = self.runner_info
        if (self.displaced is None and mine and self.child_pid is not None and holder
                and (holder.get("host"), holder.get("pid"), holder.get("since"))
                != (mine.get("host"), mine.get("pid"), mine.get("since"))):
            # Another runner took the trial over (this one looked dead: a heartbeat older
            # than its stale_after). Two runs of one trial must not go on: stop ours.
            self.displaced = dict(holder)
            _warn(f"trial {self.trial_id[:7]} was taken over by a runner on "
                  f"{holder.get('host')} (pid {holder.get('pid')}); stopping this run")
            _kill(self.child_pid, signal.SIGTERM)

    def _op_status(self, status: str, when: float, data: dict[str, Any],
                   fields: dict[str, Any]) -> None:
        event = (self.next_seq, "status", when, encode({"status": status, **data}))
        self.next_seq += 1
        self.pending.append(event)
        self.flush()
        self._fields({"status": status, "status_at": when, **fields})

    def _op_artifact(self, path: str, header: dict[str, Any], when: float) -> None:
        import hashlib

        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
        stored = False
        if self.store_ok:
            try:
                with open(path, "rb") as handle:
                    self.store.put_blob(fileobj=handle)
                stored = True
            except Exception as error:
                self._down(error)
        if stored:
            os.remove(path)
        else:
            self.spool.add_blob(path)
        data = {**header, "sha256": digest.hexdigest(), "size": size}
        self.pending.append((self.next_seq, "artifact", when, encode(data)))
        self.next_seq += 1
        self.flush()

    def _op_query(self, conn: socket.socket, request: dict[str, Any]) -> None:
        try:
            reply, payload = self._answer(request)
        except Exception as error:
            reply, payload = {"error": f"query failed: {error}"}, None
        try:
            conn.sendall(json.dumps(reply).encode("ascii") + b"\n")
            if payload is not None:
                with payload:
                    for chunk in iter(lambda: payload.read(1 << 20), b""):
                        conn.sendall(chunk)
        except OSError:
            pass

    def _answer(self, request: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        op = request.get("op")
        if op == "statistics":
            stats = [e.data for e in self.store.iter_lineage_events(
                trial_id=self.trial_id, kinds=("statistic",))]
            return {"statistics": stats}, None
        if op == "artifact":
            wanted = request.get("metadata") or {}
            filename = request.get("filename")
            match = None
            for event in self.store.iter_lineage_events(trial_id=self.trial_id,
                                                         kinds=("artifact",)):
                data = event.data
                meta = data.get("metadata") or {}
                if filename is not None and data.get("filename") != filename:
                    continue
                if all(k in meta and meta[k] == v for k, v in wanted.items()):
                    match = data
            if match is None:
                return {"found": False}, None
            handle = self.store.open_blob(sha256=match["sha256"])
            return {"found": True, "filename": match["filename"],
                    "metadata": match.get("metadata") or {}, "size": match["size"]}, handle
        return {"error": f"unknown query {op!r}"}, None

    def finish(self) -> bool:
        """Called after the thread stopped: last replay; True if nothing is left spooled."""
        if self.spool.pending:
            self._retry(force=True)
        return not self.spool.pending


class Connection:
    """One client connection: a small state machine over the wire format."""

    def __init__(self, sock: socket.socket, writer: Writer, spool_dir: str) -> None:
        self.sock = sock
        self.writer = writer
        self.spool_dir = spool_dir
        self.buffer = b""
        self.artifact: dict[str, Any] | None = None

    def feed(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if self.artifact is None and buffer[:1] == b"S" and b"\nA" not in buffer \
                and b"\nQ" not in buffer:
            # Fast path, the common case: only statistics. Split them in one go.
            last = buffer.rfind(b"\n")
            if last >= 0:
                lines = buffer[:last].decode("ascii", "replace").split("\n")
                self.writer.events("statistic", time.time(), [line[1:] for line in lines])
            self.buffer = buffer[last + 1:]
            return
        pos = 0
        end = len(buffer)
        stats: list[str] = []
        while pos < end:
            if self.artifact is not None:
                pos = self._artifact_bytes(buffer, pos)
                if self.artifact is not None:
                    break
                continue
            newline = buffer.find(b"\n", pos)
            if newline < 0:
                break
            tag = buffer[pos:pos + 1]
            if tag == b"S":
                stats.append(buffer[pos + 1:newline].decode("ascii", "replace"))
            else:
                if stats:
                    self.writer.events("statistic", time.time(), stats)
                    stats = []
                body = buffer[pos + 1:newline]
                if tag == b"A":
                    self._start_artifact(json.loads(body))
                elif tag == b"Q":
                    self.writer.call("query", self.sock, json.loads(body))
            pos = newline + 1
        if stats:
            self.writer.events("statistic", time.time(), stats)
        self.buffer = buffer[pos:]

    def _start_artifact(self, header: dict[str, Any]) -> None:
        os.makedirs(self.spool_dir, exist_ok=True)
        # The pid in the name lets `kleio sync` remove what a killed runner left.
        fd, path = tempfile.mkstemp(prefix=f"artifact-{os.getpid()}-", dir=self.spool_dir)
        self.artifact = {"header": header, "file": os.fdopen(fd, "wb"), "path": path,
                         "left": None}

    def _artifact_bytes(self, buffer: bytes, pos: int) -> int:
        art = self.artifact
        assert art is not None
        while pos < len(buffer):
            if art["left"] is None:
                if len(buffer) - pos < 8:
                    return pos
                art["left"] = int.from_bytes(buffer[pos:pos + 8], "big")
                pos += 8
                if art["left"] == 0:
                    art["file"].close()
                    self.writer.call("artifact", art["path"], art["header"], time.time())
                    self.artifact = None
                    return pos
            take = min(art["left"], len(buffer) - pos)
            art["file"].write(buffer[pos:pos + take])
            art["left"] -= take
            pos += take
            if art["left"] == 0:
                art["left"] = None
        return pos

    def close(self) -> None:
        if self.artifact is not None:  # the program died mid-artifact: drop the partial file
            self.artifact["file"].close()
            os.remove(self.artifact["path"])
            self.artifact = None
        self.sock.close()


class IOThread(threading.Thread):
    """Tee the child's output and read the channel until everything is closed."""

    def __init__(self, writer: Writer, listener: socket.socket,
                 outputs: dict[int, tuple[str, int]], spool_dir: str) -> None:
        super().__init__(name="kleio-io", daemon=True)
        self.writer = writer
        self.listener = listener
        self.outputs = outputs  # fd -> (kind, terminal fd)
        self.spool_dir = spool_dir
        self.selector = selectors.DefaultSelector()
        self.child_exited = threading.Event()
        self.exit_deadline = 0.0
        # Written to when the child exits, so the select loop wakes at once.
        self._wake_r, self._wake_w = os.pipe()

    def child_ended(self) -> None:
        self.child_exited.set()
        os.write(self._wake_w, b"x")

    def run(self) -> None:
        sel = self.selector
        listener = self.listener
        listener.setblocking(False)
        sel.register(listener, selectors.EVENT_READ, "listen")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self.cutters = {fd: LineCutter() for fd in self.outputs}
        for fd in self.outputs:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ, "output")
        connections: dict[int, Connection] = {}
        self.open_outputs = set(self.outputs)
        while True:
            if self.child_exited.is_set():
                if not self.open_outputs and not connections:
                    break
                if self.exit_deadline == 0.0:
                    self.exit_deadline = time.monotonic() + DRAIN_AFTER_EXIT
                elif time.monotonic() > self.exit_deadline:
                    break
            for key, _ in sel.select(timeout=0.5):
                tag = key.data
                if tag == "wake":
                    os.read(self._wake_r, 64)
                elif tag == "listen":
                    try:
                        sock, _addr = listener.accept()
                    except OSError:
                        continue
                    sock.setblocking(True)
                    connections[sock.fileno()] = Connection(sock, self.writer, self.spool_dir)
                    sel.register(sock, selectors.EVENT_READ, "client")
                elif tag == "output":
                    if key.fd in self.open_outputs:
                        self._read_output(key.fd)
                else:
                    # What the program printed before it logged this is already in the
                    # pipe: journal it first, so output and statistics stay in step. One
                    # read each: a grandchild that never stops printing must not starve us.
                    for fd in list(self.open_outputs):
                        self._read_output(fd)
                    conn = connections[key.fd]
                    try:
                        data = conn.sock.recv(1 << 20)
                    except OSError:
                        data = b""
                    if data:
                        try:
                            conn.feed(data)
                        except Exception as error:  # never let one client stop the tee
                            _warn(f"dropped a client connection after an error: {error}")
                            data = b""
                    if not data:
                        sel.unregister(conn.sock)
                        del connections[key.fd]
                        try:
                            conn.close()
                        except OSError:
                            pass
        for conn in connections.values():
            conn.close()
        for fd in self.open_outputs:
            self._journal(fd, self.cutters[fd].flush())
        sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


    def _read_output(self, fd: int) -> bool:
        """Tee and journal what is waiting on one output; False when nothing was read."""
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return False
        except OSError:  # EIO: the pty's other end is closed
            data = b""
        if not data:
            self.selector.unregister(fd)
            self.open_outputs.discard(fd)
            self._journal(fd, self.cutters[fd].flush())
            return False
        _write_all(self.outputs[fd][1], data)
        self._journal(fd, self.cutters[fd].feed(data))
        return True

    def _journal(self, fd: int, lines: list[str]) -> None:
        if lines:
            self.writer.events(self.outputs[fd][0], time.time(),
                               [encode({"line": line}) for line in lines])


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        except OSError:
            return  # the terminal went away: keep journalling anyway
        view = view[written:]


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class ChildProcess:
    """Spawn the command with the right stdio, signal mask and parent-death signal."""

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str]) -> None:
        self.argv, self.cwd, self.env = argv, cwd, env
        self.outputs: dict[int, tuple[str, int]] = {}
        self.ptys: list[int] = []
        # Without a terminal on stdin there is no job control to keep: the child gets its own
        # process group, so a signal sent to the runner's group (``timeout``, ``kill -PGID``)
        # reaches it once, through the runner, never twice.
        self.own_group = not os.isatty(0)

    def _stdio(self, fd: int, kind: str) -> int:
        if os.isatty(fd):
            master, slave = os.openpty()
            _copy_winsize(fd, master)
            self.ptys.append(master)
        else:
            master, slave = os.pipe()
        self.outputs[master] = (kind, fd)
        return slave

    def spawn(self) -> int:
        import subprocess

        out = self._stdio(1, "stdout")
        err = self._stdio(2, "stderr")
        prctl = _prctl()
        parent = os.getpid()
        own_group = self.own_group

        def setup() -> None:
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            if own_group:
                os.setpgid(0, 0)
            if prctl is not None:
                prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: never run on unwatched
                if os.getppid() != parent:
                    os._exit(137)

        try:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=out,
                                         stderr=err, preexec_fn=setup, close_fds=True)
        finally:
            os.close(out)
            os.close(err)
        return self.proc.pid


def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _copy_winsize(src: int, dst: int) -> None:
    try:
        import fcntl
        import termios

        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def channel_path(trial_id: str) -> str:
    """A short socket path (Unix sockets are limited to ~107 bytes)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    directory = os.path.join(base, f"kleio-{os.getuid()}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, f"{trial_id[:12]}-{os.getpid()}.sock")
    if len(path.encode()) > 100:
        directory = os.path.join(tempfile.gettempdir(), f"kleio-{os.getuid()}")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        path = os.path.join(directory, f"{trial_id[:12]}-{os.getpid()}.sock")
    return path


class Runner:
    """Run one execution of a reserved trial. See the module docstring."""

    def __init__(self, *, store: Store, trial_id: str, execution: int, next_seq: int,
                 argv: list[str], cwd: str, config: Any, runner_info: dict[str, Any]) -> None:
        self.store = store
        self.trial_id = trial_id
        self.argv = argv
        self.cwd = cwd
        self.config = config
        self.runner_info = runner_info
        spool_dir = str(config["spool_dir"])
        self.spool_dir = spool_dir
        self.spool = Spool(spool_dir, trial_id, execution)
        self.writer = Writer(store, trial_id, next_seq, self.spool,
                             float(config["flush_interval"]))
        self.writer.runner_info = runner_info
        self.stopped_by: int | None = None

    def run(self) -> int:
        """Run the child to its end; return the exit code kleio must exit with."""
        path = channel_path(self.trial_id)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.remove(path)
        listener.bind(path)
        listener.listen(64)
        env = dict(os.environ)
        env["KLEIO_TRIAL_ID"] = self.trial_id
        env["KLEIO_CHANNEL"] = path
        # Python block-buffers a pipe: its output would reach the journal (and `tail -f`)
        # late and out of step with its statistics. Line by line, unless the user chose.
        env.setdefault("PYTHONUNBUFFERED", "1")
        child = ChildProcess(self.argv, self.cwd, env)
        # Block the signals we wait for *before* spawning, so none is lost; the child
        # unblocks them in its pre-exec hook.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)
        try:
            return self._supervise(child, listener, path)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            listener.close()
            try:
                os.remove(path)
            except OSError:
                pass

    def _supervise(self, child: ChildProcess, listener: socket.socket, path: str) -> int:
        writer = self.writer
        try:
            pid = child.spawn()
        except OSError as error:
            # ENOEXEC (a script without '#!'), EACCES...: the trial must not stay reserved.
            now = time.time()
            failed = {"status": "broken", "exit_code": 126, "error": str(error)}
            self.store.append_events(trial_id=self.trial_id,
                                     events=[(writer.next_seq, "status", now, encode(failed))])
            self.store.update_trial(trial_id=self.trial_id, fields={
                "status": "broken", "status_at": now, "ended_at": now, "exit_code": 126})
            from kleio.errors import CannotExecute

            raise CannotExecute(
                f"cannot execute {self.argv[0]}: {error.strerror or error}",
                "give a script a '#!' line, or run it through its interpreter "
                "(e.g. 'kleio bash script.sh')",
            ) from None
        started = time.time()
        writer.child_pid = pid
        writer.start()
        io_thread = IOThread(writer, listener, child.outputs, self.spool_dir)
        io_thread.start()
        writer.call("status", "running", started, {"pid_child": pid, **self.runner_info},
                    {"heartbeat_at": started, "started_at": started})
        interval = float(self.config["heartbeat_interval"])
        interrupted = None
        status = None
        last_forwarded: dict[tuple[int, int], float] = {}
        next_beat = time.monotonic() + interval
        while status is None:
            info = signal.sigtimedwait(WAITED, max(0.0, next_beat - time.monotonic()))
            if info is None:
                # Never block the signal loop on a journal that is slow: a heartbeat that
                # does not fit in the queue is skipped, the next one will do.
                try:
                    writer.queue.put_nowait(("heartbeat", time.time()))
                except queue.Full:
                    pass
                next_beat = time.monotonic() + interval
                continue
            signo = info.si_signo
            if signo == signal.SIGCHLD:
                done, wait_status = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = wait_status
            elif signo == signal.SIGWINCH:
                for master in child.ptys:
                    _copy_winsize(child.outputs[master][1], master)
                _kill(pid, signo)
            elif signo in FORWARDED:
                if signo in INTERRUPTS:
                    interrupted = signo
                # `timeout` and some schedulers signal both the runner and its process group:
                # the runner gets the same signal twice from one sender within microseconds.
                # Forward it once.
                now = time.monotonic()
                key = (signo, info.si_pid)
                duplicate = now - last_forwarded.get(key, -1.0) < DUPLICATE_WINDOW
                last_forwarded[key] = now
                # Sharing the terminal's process group, the child already got a Ctrl-C:
                # then forward only what another process sent to the runner itself.
                if not duplicate and (child.own_group or info.si_code in (SI_USER, SI_QUEUE)
                                      or info.si_pid):
                    _kill(pid, signo)
            elif os.environ.get("KLEIO_DEBUG"):
                # After SIGSTOP/SIGCONT, CPython's sigtimedwait can return a struct of
                # garbage (seen on 3.11): never act on a signal we did not ask for.
                _warn(f"ignored an unexpected wake-up: {info}")
        code = _exit_code(status)
        ended = time.time()
        io_thread.child_ended()
        io_thread.join()
        for master in child.outputs:
            try:
                os.close(master)
            except OSError:
                pass
        # A program that exits cleanly after being asked to stop has not finished its work:
        # it stays resumable.
        if writer.stop_request is not None:
            final = "suspended"  # stopped by `kleio stop`: resumable, like an interruption
        elif interrupted is not None or code - 128 in INTERRUPTS:
            final = "interrupted"
        elif code == 0:
            final = "completed"
        else:
            final = "broken"
        # ``stopped_by``: the signal another process (a person, a scheduler) sent to stop
        # the run, as opposed to the program dying of a signal on its own.
        self.stopped_by = interrupted
        data: dict[str, Any] = {"exit_code": code}
        if interrupted is not None:
            data["stopped_by"] = int(interrupted)
        if writer.stop_request is not None:
            data["stop_requested"] = writer.stop_request
        writer.call("status", final, ended, data, {"ended_at": ended, "exit_code": code})
        writer.call("stop")
        writer.join()
        if not writer.finish():
            _warn(f"the journal is still unavailable; {writer.spool.path} holds this run's "
                  "last events: run 'kleio sync' when the journal is back")
        return code


def run_reserved(*, store: Store, config: Any, trial_id: str, reservation: Any,
                 runner_info: dict[str, Any], argv: list[str], cwd: str) -> int:
    """Run one execution of a trial reserved by :func:`kleio.reservation.reserve`."""
    return Runner(
        store=store,
        trial_id=trial_id,
        execution=reservation.execution,
        next_seq=reservation.next_seq,
        argv=argv,
        cwd=cwd,
        config=config,
        runner_info=runner_info,
    ).run()


def _kill(pid: int, signo: int) -> None:
    try:
        os.kill(pid, signo)
    except ProcessLookupError:
        pass


__all__ = ["ChildProcess", "LineCutter", "Runner", "channel_path", "run_reserved"]
