"""The one way to run MMS: :class:`ServedModel`, from the port check to the clean-up.

``frame-infer serve``, the SageMaker container, the demo, the benchmarks and the test
helpers all run MMS through it::

    with ServedModel(ServeConfig(ServerSettings(store), (ModelSettings("m.mar", "m"),))) as s:
        s.wait()  # until SIGTERM/SIGINT, or until MMS exits by itself

Entering checks the ports and archives (nothing starts when they fail), starts Java by
pid in its own process group, registers the models and waits for READY workers, under
an optional start-up deadline (a watchdog kills Java then, so no wait outlasts it), and
starts the optional metrics thread. Leaving stops Java and its workers by pid and
removes the run dir as :attr:`ServeConfig.remove_run_dir` says, however the block ends.

SIGTERM and SIGINT become :class:`Stopped` at any moment (handlers installed only in the
main thread; the previous ones come back on exit): during start-up, registration or the
body, the exception unwinds through the context manager, so stop and clean-up run. A
signal while Java is being spawned is held until its pid is ours; one that arrives while
the server is already stopping raises nothing (it would cut the stop short).
"""
from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Literal

from ..errors import ServerError
from . import diagnose
from .metrics import MMSLogReader, ServingMetrics, expose, follow
from .mms import LocalMMS, ModelSettings, ServerSettings, worker_threads
from .ports import check_ports, port_in_use

SIGNALS = (signal.SIGINT, signal.SIGTERM)
JAVA_START_S, REGISTER_S = 60.0, 120.0
"""LocalMMS's own waits when no start-up deadline is given."""


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived: the server stops. A ``KeyboardInterrupt``, so code that
    already treats Ctrl-C as "stop and keep what is done" treats SIGTERM alike."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum
        """What a process stopped by this signal exits with, by the shell's convention."""


class StartupTimeout(ServerError):
    """No READY worker by :attr:`ServeConfig.startup_timeout_s`: the watchdog killed Java."""


@dataclass(frozen=True)
class MetricsSettings:
    """The optional metrics thread: MMS's console log followed into ServingMetrics."""

    port: int | None = None
    """Serve the metrics at ``http://127.0.0.1:PORT/metrics`` (``serve --metrics-port``);
    None: no exporter of ours (the container's front serves them)."""
    count_access: bool = False
    """Count requests from MMS's access log: where no front sees them (``serve``)."""
    copy_to: BinaryIO | None = None
    """Write every console line here too, EMF records bare (the container's stdout:
    SageMaker sends it to CloudWatch Logs)."""


@dataclass(frozen=True)
class ServeConfig:
    """Everything :class:`ServedModel` runs: one server, its models, how it is watched."""

    server: ServerSettings
    """Ports, limits and run dir of the MMS server."""
    models: tuple[ModelSettings, ...] = ()
    """Registered in order, each waited for until its workers are READY."""
    threads: int | None = None
    """OpenMP threads per worker; None: :func:`worker_threads` of the first model's
    workers (every core used once)."""
    startup_timeout_s: float | None = None
    """Deadline for Java and every registration together: a watchdog kills Java then and
    entering raises :class:`StartupTimeout`. None: no deadline beyond LocalMMS's own
    waits (60 s for Java, 120 s per registration)."""
    metrics: MetricsSettings | None = None
    """The metrics thread, started once the models are READY; None: none."""
    remove_run_dir: Literal["clean-stop", "always", "never"] = "clean-stop"
    """When the run dir is removed (only ever a temp one made for this server, with
    ``ServerSettings.run_dir`` None). ``clean-stop``: after the block ended normally or by
    a signal, not after a failure (its error points to the logs there). ``always``: the
    caller keeps what it needs of the logs (:attr:`ServedModel.failure_log`)."""
    handle_signals: bool = True
    """Turn SIGTERM and SIGINT into :class:`Stopped` (only in the main thread)."""

    @property
    def name(self) -> str | None:
        """The first model's name (the one a single-model server serves)."""
        return self.models[0].name if self.models else None


class ServedModel:
    """MMS with its models READY while the ``with`` block runs; stopped by pid after it.

    ``start()``/``close()`` are the same steps for callers that cannot nest a block."""

    def __init__(self, config: ServeConfig,
                 on_started: Callable[[LocalMMS], None] | None = None):
        """``on_started``: called once Java answers, before any registration."""
        self.config, self.on_started = config, on_started
        self.name = config.name
        self.server: LocalMMS | None = None
        self.metrics: ServingMetrics | None = None
        self.exporter = None
        self.stopping = threading.Event()
        """Set when the server starts to stop; threads that watch it end then."""
        self.ready = False
        self.failed = False
        self.started_s = self.registered_s = 0.0
        """Seconds Java took to answer, and registration to READY (all models)."""
        self.failure_log = ""
        """MMS's last log lines when start() failed, read before the run dir may go."""
        self._previous: dict[int, object] = {}
        self._spawning = self._closing = False
        self._pending: int | None = None
        self._watchdog: threading.Timer | None = None
        self._expired = threading.Event()
        self._threads = 1
        self._restart_lock = threading.Lock()
        self.restarting = False
        self.restarts = 0
        """Times :meth:`restart` brought MMS back."""

    # -- the steps -------------------------------------------------------------------
    def start(self) -> "ServedModel":
        """Check, start, register, wait READY. On any failure MMS is stopped and cleaned
        up first, and the error raised is the cause's own (its class says what to fix),
        except :class:`StartupTimeout` when the deadline passed."""
        config, settings = self.config, self.config.server
        check_ports(settings.port, settings.management_port)  # nothing to clean up yet
        for model in config.models:
            unpacked = Path(settings.model_store) / model.archive / "MAR-INF" / "MANIFEST.json"
            if not unpacked.is_file():  # an unpacked archive (the container's) is fine
                diagnose.check_archive(settings.model_store, model.archive)
        port = config.metrics.port if config.metrics else None
        if port and (port_in_use(port) or port in (settings.port, settings.management_port)):
            raise ServerError(f"metrics port {port} on 127.0.0.1 is already in use; choose "
                              "another with --metrics-port")
        try:
            self._install_signals()
            self._start()
        except BaseException as exc:
            self.failure_log = self.server.log_tail() if self.server is not None else ""
            self._close(failed=not isinstance(exc, Stopped))
            if self._expired.is_set() and not isinstance(exc, Stopped):
                raise StartupTimeout(f"no READY worker within "
                                     f"{config.startup_timeout_s:g}s") from exc
            raise
        return self

    def _start(self) -> None:
        config = self.config
        deadline = config.startup_timeout_s
        self.server = server = LocalMMS(config.server)
        if deadline is not None:
            self._watchdog = threading.Timer(deadline, self._expire)
            self._watchdog.daemon = True
            self._watchdog.start()
        threads = self._threads = config.threads or worker_threads(
            config.models[0].workers if config.models else 1)
        began = time.monotonic()
        self._spawning = True  # a signal now would lose the pid: it waits for the handle
        try:
            server.spawn(threads)
        finally:
            self._spawning = False
        self._deliver_pending()
        if self._expired.is_set():
            raise ServerError("deadline passed")
        # LocalMMS's own waits lie past a deadline: the watchdog decides.
        server.wait_started(deadline + 30 if deadline is not None else JAVA_START_S)
        self.started_s = time.monotonic() - began
        if self.on_started is not None:
            self.on_started(server)
        registering = time.monotonic()
        for model in config.models:
            server.register(model, timeout=deadline + 30 if deadline is not None
                            else REGISTER_S)
        self.registered_s = time.monotonic() - registering
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._expired.is_set():
            raise ServerError("deadline passed")
        if config.metrics is not None:
            self._start_metrics(config.metrics)
        self.ready = True

    def _start_metrics(self, settings: MetricsSettings) -> None:
        """Follow MMS's console into metrics until ``stopping``; serve them on a port."""
        self.metrics = ServingMetrics()
        if settings.port:
            try:
                self.exporter = expose(settings.port, self.metrics)
            except OSError as exc:
                raise ServerError(f"cannot serve metrics on 127.0.0.1:{settings.port}: "
                                  f"{exc}; choose another port with --metrics-port") from exc
        reader = MMSLogReader(self.metrics, count_access=settings.count_access)
        threading.Thread(target=follow, args=(self.server.stdout_log, reader, self.stopping,
                                              settings.copy_to), daemon=True).start()

    def _expire(self) -> None:
        """The watchdog: kill Java, keeping the handle, so every wait sees it exit at once."""
        self._expired.set()
        process = self.server.process if self.server is not None else None
        if process is not None and not self._closing:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait(self) -> bool:
        """Block until SIGTERM/SIGINT or :meth:`request_stop` (True), or until MMS exits by
        itself (False: :attr:`failed`, so a ``clean-stop`` run dir keeps its logs). While
        :meth:`restart` runs, MMS being down is not an exit."""
        try:
            while not self.stopping.wait(1.0):
                process = self.server.process
                if self.restarting:
                    continue
                if process is None or process.poll() is not None:
                    self.failed = True
                    return False
        except Stopped:
            pass
        return True

    def restart(self, grace_s: float = 2.0) -> None:
        """Stop MMS (SIGTERM, ``grace_s``, then SIGKILL: it is not serving anyway) and start
        it again with the same settings: same ports, run dir and console log (appended, so
        the metrics thread keeps reading it), each model registered and READY again.

        For the front's supervisor, from its own thread; raises ServerError (or the
        registration's error) when MMS does not come back. Does nothing once the server
        is stopping; a stop that comes during a restart wins (what was started is stopped
        by :meth:`close`)."""
        if not self.ready or self.stopping.is_set():
            return
        server, config = self.server, self.config
        self.restarting = True
        try:
            with self._restart_lock:
                if self.stopping.is_set():
                    return
                server.stop(timeout=grace_s)
                server.spawn(self._threads)
            server.wait_started(JAVA_START_S)
            for model in config.models:
                server.register(model, timeout=REGISTER_S)
            self.restarts += 1
        finally:
            self.restarting = False

    def request_stop(self) -> None:
        """End :meth:`wait` from another thread (as a signal does in the main thread)."""
        self.stopping.set()

    def close(self) -> None:
        """Stop MMS and clean up after a body that ended normally (idempotent)."""
        self._close(failed=False)

    def _close(self, failed: bool) -> None:
        self._closing = True  # from here a signal only waits for the stop under way
        self.failed = self.failed or failed
        self.stopping.set()
        try:
            if self._watchdog is not None:
                self._watchdog.cancel()
            if self.exporter is not None:
                self.exporter.shutdown()
                self.exporter.server_close()
                self.exporter = None
            if self.server is not None:
                with self._restart_lock:  # a restart under way spawns nothing after this
                    self.server.stop()
                policy = self.config.remove_run_dir
                if policy == "always" or (policy == "clean-stop" and not self.failed):
                    self.server.cleanup()
        finally:
            self._restore_signals()

    def __enter__(self) -> "ServedModel":
        return self.start()

    def __exit__(self, kind, exc, traceback) -> None:
        self._close(failed=kind is not None and not issubclass(kind, Stopped))

    # -- signals ---------------------------------------------------------------------
    def _install_signals(self) -> None:
        if not self.config.handle_signals or \
                threading.current_thread() is not threading.main_thread():
            return
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def _restore_signals(self) -> None:
        previous, self._previous = self._previous, {}
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may; it installed them (a misuse: left as is)
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def _on_signal(self, signum: int, frame) -> None:
        if self._closing or _inside(frame, _CLEAN_UP):
            self.stopping.set()  # the stop is under way; raising would only cut it short
            return
        own = _entering(frame, self)
        if self._spawning or (own and not self.ready):
            # Spawning: raised as soon as Java's pid is ours. In start()'s own lines (its
            # except clause, before it closes): its clean-up follows anyway.
            self._pending = signum
            return
        if own:  # start() done, the body not yet running: raising would skip __exit__
            threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()  # again, soon
            return
        self._closing = True  # one Stopped only; the unwinding must not be cut short
        self.stopping.set()
        raise Stopped(signum)

    def _deliver_pending(self) -> None:
        signum, self._pending = self._pending, None
        if signum is not None:
            self._closing = True
            self.stopping.set()
            raise Stopped(signum)


_CLEAN_UP = {ServedModel._close.__code__, ServedModel.__exit__.__code__,
             ServedModel.close.__code__}


def _entering(frame, served: ServedModel) -> bool:
    """Whether ``frame`` runs the own lines of ``served``'s ``start`` or ``__enter__`` (a
    subclass's too), not a step they call."""
    return (frame is not None and frame.f_code.co_name in ("start", "__enter__")
            and frame.f_locals.get("self") is served)


def _inside(frame, codes: set) -> bool:
    """Whether ``frame`` or one of its callers runs one of ``codes``."""
    while frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False
