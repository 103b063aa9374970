"""The sim's core: the generic controllers every cluster runs (nodes, scheduler, kubelet, workloads,
endpoints) and the controller framework that add-ons (`pytest_aksai.sim._addons`) build on.

The runtime calls `start(ctx)` once the API server's store is bootstrapped; it applies the scenario and
returns the long-lived tasks of the core controllers and of the scenario's add-ons, which the runtime
cancels at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pytest_aksai.sim import contract
from pytest_aksai.sim._apiserver._errors import ApiError
from pytest_aksai.sim._core._cronjob import CronJobController
from pytest_aksai.sim._core._daemonset import DaemonSetController
from pytest_aksai.sim._core._deployment import DeploymentController
from pytest_aksai.sim._core._disruption import DisruptionController
from pytest_aksai.sim._core._endpoints import EndpointsController
from pytest_aksai.sim._core._exec import install as install_runtime
from pytest_aksai.sim._core._framework import Controller, run_all
from pytest_aksai.sim._core._job import JobController
from pytest_aksai.sim._core._kubelet import KubeletController
from pytest_aksai.sim._core._nodes import NodeController
from pytest_aksai.sim._core._replicaset import ReplicaSetController
from pytest_aksai.sim._core._scheduler import SchedulerController
from pytest_aksai.sim._core._statefulset import StatefulSetController
from pytest_aksai.sim._core._taints import TaintEvictionController
from pytest_aksai.sim._core._volumes import VolumeController
from pytest_aksai.sim._scenarios import Scenario, load_scenario, scenario_objects

log = logging.getLogger("pytest_aksai.sim.controllers")

CORE_CONTROLLERS: list[type[Controller]] = [
    NodeController,
    SchedulerController,
    KubeletController,
    ReplicaSetController,
    DeploymentController,
    StatefulSetController,
    DaemonSetController,
    JobController,
    CronJobController,
    EndpointsController,
    TaintEvictionController,
    DisruptionController,
    VolumeController,
]


def apply_scenario(ctx: Any, scenario: Scenario) -> None:
    """Create the scenario's objects (existing ones are left as they are) and advertise its add-ons."""
    store = ctx.store
    for obj in scenario_objects(scenario, ctx.clock.timestamp()):
        rt = store.resource(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        try:
            store.create(rt, obj)
        except ApiError as exc:
            if exc.code != 409:
                raise ApiError(
                    exc.code,
                    f"scenario {scenario.name!r}: cannot create {obj.get('kind')} "
                    f"{(obj.get('metadata') or {}).get('name')!r}: {exc.message}",
                ) from exc
    configmaps = store.resource("v1", "configmaps")
    sim = store.try_get(configmaps, contract.SIM_CONFIGMAP, contract.SIM_NAMESPACE)
    if sim is not None:
        sim.setdefault("data", {})[contract.KEY_ADDONS] = ",".join(scenario.addons)
        store.update(configmaps, sim)


async def start(ctx: Any) -> list[asyncio.Task[None]]:
    from pytest_aksai.sim._addons import resolve

    scenario = load_scenario(ctx.scenario)
    _, web_server = install_runtime(ctx)
    apply_scenario(ctx, scenario)
    controllers = [*CORE_CONTROLLERS, *(c for addon in resolve(scenario.addons) for c in addon.controllers())]
    return [web_server, *await run_all(controller(ctx) for controller in controllers)]
