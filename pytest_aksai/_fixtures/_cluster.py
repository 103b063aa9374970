"""Session-level connection to the cluster under test, run-scoped namespaces, and cleanup."""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_aksai._areas import AREAS
from pytest_aksai._errors import ConnectError
from pytest_aksai._settings import Settings, settings_of
from pytest_aksai.sim.contract import KUBECONFIG_CONTEXT

if TYPE_CHECKING:
    from pytest_aksai.kube import Cluster, RunScope
    from pytest_aksai.sim import SimCluster


class ClusterRuntime:
    """Connects lazily, once per session; starts the embedded simulated cluster when the profile asks for it."""

    def __init__(self, settings: Settings, worker: str | None = None, shared_sim: Path | None = None) -> None:
        self.settings = settings
        self.worker = worker
        """The xdist worker id (gw0, ...): it cleans up what it created; its controller sweeps the run."""
        self.shared_sim = shared_sim
        """Under xdist on the simulated cluster: the kubeconfig of the one sim the controller started."""
        self._sim: SimCluster | None = None
        self._sim_dir: tempfile.TemporaryDirectory[str] | None = None
        self._cluster: Cluster | None = None
        self._error: ConnectError | None = None
        self.scope: RunScope | None = None
        self.kept: list[str] = []
        self.reaped: list[str] = []
        self.cleanup_errors: list[str] = []
        self.left: list[str] = []
        self._closed = False
        self._kind: Any = None

    @property
    def started(self) -> bool:
        return self._cluster is not None

    def cluster(self) -> Cluster:
        if self._error is not None:
            raise self._error
        if self._cluster is None:
            try:
                self._cluster = self._connect()
            except ConnectError as exc:
                self._error = exc
                raise
        return self._cluster

    def _connect(self) -> Cluster:
        from pytest_aksai.kube import RunScope, connect

        s = self.settings
        kubeconfig, context = s.kubeconfig, s.context
        if s.is_sim and kubeconfig is None and self.shared_sim is not None:
            kubeconfig, context = self.shared_sim, KUBECONFIG_CONTEXT
        elif s.is_sim and kubeconfig is None:
            kubeconfig, context = self._start_sim()
        elif s.profile.create:
            kubeconfig, context = self._create_kind_cluster(), None
        cluster = connect(
            profile=s.cluster,
            provider=s.provider,
            kubeconfig=kubeconfig,
            context=context,
            timeout=s.timeout("connect") if not s.is_sim else 10.0,
            readonly=s.readonly,
        )
        self.scope = RunScope.for_cluster(cluster, s.run_id, timedelta(seconds=s.expiry_s), self.worker)
        try:
            _require_access(cluster, s)
        except ConnectError:
            cluster.close()
            raise
        # a fresh embedded sim has nothing to reap; a read-only run deletes nothing
        if self._sim is None and self.shared_sim is None and not s.readonly:
            self.reaped = self.scope.reap_expired()
        if not s.readonly:  # the run's Lease is a write
            self.scope.start_heartbeat()
        return cluster

    def _start_sim(self) -> tuple[Path, str]:
        from pytest_aksai.sim import SimCluster

        sim_settings = self.settings.profile.sim
        self._sim_dir = tempfile.TemporaryDirectory(prefix="aksai-sim-")
        kubeconfig = Path(self._sim_dir.name) / "sim.kubeconfig"
        self._sim = SimCluster(
            scenario=sim_settings.scenario,
            time_scale=sim_settings.time_scale,
            faults=self.settings.sim_faults,
            kubeconfig_path=kubeconfig,
        ).start()
        return self._sim.kubeconfig_path, KUBECONFIG_CONTEXT

    def _create_kind_cluster(self) -> Path:
        """A throwaway kind cluster through pytest-kubernetes (which drives the `kind` and `kubectl` binaries)."""
        import shutil

        missing = [tool for tool in ("kind", "kubectl", "docker") if shutil.which(tool) is None]
        if missing:
            raise ConnectError(
                f'Cluster profile {self.settings.cluster!r} has provider = "kind" and create = true, which needs '
                f"the kind, kubectl and docker commands and a running Docker engine; missing: {', '.join(missing)}. "
                "Install them, or drop create and point kubeconfig at an existing cluster.",
                configuration_problem=True,
            )
        try:
            from pytest_kubernetes.providers import select_provider_manager
        except ImportError:
            raise ConnectError(
                f'Cluster profile {self.settings.cluster!r} has provider = "kind" and create = true, which '
                "creates the cluster through pytest-kubernetes, an optional dependency that is not installed. "
                'Install it with `pip install "pytest-aksai[kind]"`, or drop create and point kubeconfig at an '
                "existing cluster.",
                configuration_problem=True,
            ) from None

        manager = select_provider_manager("kind")(f"aksai-{self.settings.run_id}")
        try:
            manager.create(timeout=int(self.settings.timeout("connect")) + 60)
        except RuntimeError as exc:
            raise ConnectError(
                f"Cluster profile {self.settings.cluster!r}: creating the kind cluster failed ({exc}). Check that "
                "Docker runs (`docker info`) and try `kind create cluster` by hand.",
                configuration_problem=False,
            ) from None
        self._kind = manager
        return Path(manager.kubeconfig)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.scope is not None and self._cluster is not None:
                # a read-only run created nothing, and its role may not list what cleanup lists
                if self.settings.keep and not self.settings.readonly:
                    self.kept = self.scope.leftovers()
                    self.scope.stop_heartbeat(delete=True)
                elif not self.settings.readonly:
                    self._clean(self.scope)
            if self._cluster is not None:
                self._cluster.close()
        finally:
            if self._sim is not None:
                self._sim.stop()
            if self._kind is not None and not self.settings.keep:
                self._kind.delete()
            if self._sim_dir is not None:
                self._sim_dir.cleanup()

    def _clean(self, scope: RunScope) -> None:
        """Bounded cleanup; a second Ctrl-C (or SIGTERM) stops waiting and says what is left and how to remove it."""
        try:
            result = scope.cleanup(self.settings.cleanup_timeout)
        except KeyboardInterrupt:
            scope.stop_heartbeat(delete=False)
            try:
                left = scope.left()
            except Exception:
                left = ["(the cluster did not answer: run the command below to find and remove it)"]
            self.left = left
            sys.stderr.write(self.left_paragraph(left, "cleanup was interrupted") + "\n")
            return
        except Exception as exc:  # cleanup must not hide the run's verdicts
            self.cleanup_errors.append(f"{type(exc).__name__}: {exc}")
            return
        self.left = result.left
        if result.left:
            scope.stop_heartbeat(delete=False)
            sys.stderr.write(
                self.left_paragraph(
                    result.left, f"cleanup ran out of its {self.settings.cleanup_timeout:g} s"
                )
                + "\n"
            )

    def janitor_command(self) -> str:
        return f"python -m pytest_aksai janitor --aksai-cluster {self.settings.cluster} --run {self.settings.run_id}"

    def left_paragraph(self, left: list[str], why: str) -> str:
        return (
            f"aksai: {why}; left on cluster {self.settings.cluster!r} by run {self.settings.run_id}: "
            f"{', '.join(left) or 'nothing'}. Remove it with `{self.janitor_command()}` "
            "(a later run also reaps it once its expiry has passed)."
        )


def _interrupt_on_sigterm() -> None:
    """SIGTERM (CI cancelling the job) ends the run like Ctrl-C, so that cleanup runs; a handler the user set
    is left alone."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupt)


def _require_access(cluster: Cluster, settings: Settings) -> None:
    """The identity holds every permission the run's ClusterRole manifest grants, or the run ends naming
    what is missing and the manifest to apply (`kube.review_access`)."""
    from pytest_aksai._data import fixture_path
    from pytest_aksai.kube import review_access

    manifest = fixture_path("rbac/aksai-readonly.yaml" if settings.readonly else "rbac/aksai-full.yaml")
    review = review_access(cluster, manifest)
    if review is None or not review.missing:
        return
    who = f"user {review.user!r}" if review.user else "the identity"
    role = manifest.stem
    readonly_hint = (
        ""
        if settings.readonly
        else " Or run read-only (--aksai-readonly) with the narrower aksai-readonly.yaml."
    )
    raise ConnectError(
        f"Cluster profile {settings.cluster!r}: {who} lacks {len(review.missing)} permission(s) a "
        f"{'read-only' if settings.readonly else 'full'} run needs: "
        f"{', '.join(str(p) for p in review.missing)} (cluster-wide). Grant them with the ClusterRole {manifest} "
        f"(`kubectl apply -f {manifest}` and `kubectl create clusterrolebinding {role} --clusterrole={role} "
        f"--user=<that user>`).{readonly_hint}",
        configuration_problem=False,
    )


_RUNTIME = pytest.StashKey[ClusterRuntime]()
_DEFERRED_EXIT = pytest.StashKey[ConnectError]()


def exit_for(exc: ConnectError) -> NoReturn:
    """End the run with the connection problem's paragraph (exit 4 for configuration, 1 otherwise)."""
    code = pytest.ExitCode.USAGE_ERROR if exc.configuration_problem else pytest.ExitCode.TESTS_FAILED
    pytest.exit(str(exc), returncode=code)


def cluster_during_collection(config: pytest.Config) -> Cluster | None:
    """The cluster, for fixtures parametrized at collection; None after a connection problem, which ends the
    run once collection is over with the same paragraph and exit code as at first use."""
    try:
        return runtime_of(config).cluster()
    except ConnectError as exc:
        defer_exit(config, exc)
        return None


def defer_exit(config: pytest.Config, exc: ConnectError) -> None:
    """Remember a harness problem met while collecting; the run ends with it once collection is over."""
    config.stash.setdefault(_DEFERRED_EXIT, exc)


def pytest_collection_finish(session: pytest.Session) -> None:
    deferred = session.config.stash.get(_DEFERRED_EXIT, None)
    if deferred is not None:
        exit_for(deferred)


def pytest_configure(config: pytest.Config) -> None:
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    shared = workerinput.get(_SHARED_SIM)
    config.stash[_RUNTIME] = ClusterRuntime(
        settings_of(config), workerinput.get("workerid"), Path(shared) if shared else None
    )
    _interrupt_on_sigterm()


_SHARED_SIM = "aksai_shared_sim_kubeconfig"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: connect once (starting the one simulated cluster the workers share) and hand its
    kubeconfig to each worker; the controller sweeps what the run left once every worker is done."""
    runtime = runtime_of(node.config)
    settings = runtime.settings
    if settings.manifests is not None or node.config.getoption("collectonly"):
        return
    try:
        runtime.cluster()
    except ConnectError:
        return  # each worker meets the same problem and ends the run with its paragraph
    if runtime._sim is not None:
        node.workerinput[_SHARED_SIM] = str(runtime._sim.kubeconfig_path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`-n N` keeps each test module on one worker (xdist's `--dist loadfile`): a module's namespace, GPU probe
    and once-per-run measurements are created once, not once per worker that runs one of its tests."""
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]

    return LoadFileScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    close_runtime(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    close_runtime(config)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """An area's checks skip, naming the missing add-on, on a cluster that does not serve the area's API group."""
    if "aksai_cluster" not in getattr(item, "fixturenames", ()):
        return
    settings = settings_of(item.config)
    groups = [
        (area.name, area.api_group)
        for area in AREAS
        if area.api_group and item.get_closest_marker(area.name) is not None
    ]
    if not groups or settings.manifests is not None:
        return
    for name, _ in groups:
        if settings.is_absent(name):
            pytest.skip(settings.absence_reason(name))
    runtime = runtime_of(item.config)
    try:
        cluster = runtime.cluster()
    except ConnectError as exc:
        exit_for(exc)
    for _, group in groups:
        missing = cluster.missing_api_reason(group)
        if missing:
            pytest.skip(missing)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in summary_lines(terminalreporter.config):
        terminalreporter.write_line(line)


def runtime_of(config: pytest.Config) -> ClusterRuntime:
    return config.stash[_RUNTIME]


def close_runtime(config: pytest.Config) -> None:
    runtime = config.stash.get(_RUNTIME, None)
    if runtime is not None:
        runtime.close()


@pytest.fixture(scope="session")
def aksai_settings(pytestconfig: pytest.Config) -> Settings:
    """The resolved pytest-aksai settings (profile, options and where each value came from)."""
    return settings_of(pytestconfig)


@pytest.fixture(scope="session")
def aksai_cluster(pytestconfig: pytest.Config) -> Cluster:
    """The cluster under test, connected once per session; a connection failure ends the run with one message."""
    runtime = runtime_of(pytestconfig)
    try:
        return runtime.cluster()
    except ConnectError as exc:
        exit_for(exc)


def record_of(config: pytest.Config) -> RunScope:
    """The run's record of what it creates: an area fixture labels what it creates with `.labels` (the run's
    labels and expiry) and calls `.record(kind, name, namespace)`, and `.release(entry)` once it removed it.
    Whatever is still recorded or labelled is removed at the end of the run, also on Ctrl-C and SIGTERM."""
    runtime = runtime_of(config)
    runtime.cluster()
    assert runtime.scope is not None, "the run scope exists once the cluster is connected"
    return runtime.scope


def _scope(pytestconfig: pytest.Config, cluster: Cluster) -> RunScope:
    scope = runtime_of(pytestconfig).scope
    assert scope is not None, "the run scope exists once the cluster is connected"
    return scope


def _namespace(request: pytest.FixtureRequest, cluster: Cluster, slug_source: str) -> Iterator[str]:
    scope = _scope(request.config, cluster)
    name = scope.create_namespace(slug_source)
    yield name
    if not settings_of(request.config).keep:
        scope.delete_namespace(name)


@pytest.fixture
def aksai_namespace(request: pytest.FixtureRequest, aksai_cluster: Cluster) -> Iterator[str]:
    """A namespace of this test alone, `aksai-<run>-<test>`, labelled with the run and deleted afterwards."""
    yield from _namespace(request, aksai_cluster, request.node.name)


@pytest.fixture(scope="module")
def aksai_module_namespace(request: pytest.FixtureRequest, aksai_cluster: Cluster) -> Iterator[str]:
    """A namespace shared by the tests of one module, labelled with the run and deleted afterwards."""
    yield from _namespace(request, aksai_cluster, request.module.__name__.rpartition(".")[2])


@pytest.fixture(scope="session")
def aksai_labels(pytestconfig: pytest.Config) -> dict[str, str]:
    """The labels every object this run creates must carry (cleanup finds objects by them)."""
    from datetime import UTC, datetime

    from pytest_aksai.kube import run_labels

    runtime = runtime_of(pytestconfig)
    if runtime.scope is not None:
        return runtime.scope.labels
    settings = settings_of(pytestconfig)
    expires = datetime.now(UTC) + timedelta(seconds=settings.expiry_s)
    return {**run_labels(settings.run_id), "aksai.dev/expires": expires.strftime("%Y%m%dT%H%M%SZ")}


def summary_lines(config: pytest.Config) -> list[str]:
    runtime = config.stash.get(_RUNTIME, None)
    if runtime is None:
        return []
    lines: list[str] = []
    if runtime.reaped:
        lines.append(f"aksai: reaped expired leftovers of dead runs: {', '.join(runtime.reaped)}")
    if runtime.kept:
        lines.append(
            f"aksai: kept (--aksai-keep): namespaces {', '.join(runtime.kept)}; delete them with "
            f"`kubectl delete ns -l aksai.dev/run={runtime.settings.run_id}`"
        )
    for error in runtime.cleanup_errors:
        lines.append(
            f"aksai: cleanup failed: {error}; remove what is left with `{runtime.janitor_command()}`"
        )
    return lines


def report_data(config: pytest.Config) -> dict[str, Any]:
    runtime = config.stash.get(_RUNTIME, None)
    if runtime is None:
        return {}
    return {
        "kept": runtime.kept,
        "reaped": runtime.reaped,
        "cleanup_errors": runtime.cleanup_errors,
        "left": runtime.left,
        "external": list(runtime.scope.external) if runtime.scope is not None else [],
    }
