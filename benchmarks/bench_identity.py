"""How long each hop of the Workload Identity chain takes against the simulated Azure:
`python benchmarks/bench_identity.py [--runs N]`.

Wall milliseconds per hop, with the official SDKs as the suite uses them: TokenRequest, the issuer's
discovery and JWKS, the Entra ID exchange, one Key Vault read (a new SecretClient: challenge, then the
authorised GET), one Service Bus probe message (a new AMQP connection, CBS, send), one queue-depth read (the
management API, as KEDA reads it), and a probe pod's start with the lab's SecretProviderClass mounted (the
simulated CSI driver's exchange and vault reads) against the same pod without it. Baseline measured in the
same run: one authenticated GET /version of the API server (TLS, the same CA).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_aksai.azure import (
    SERVICE_BUS_SCOPE,
    AzureTarget,
    exchange,
    issuer_documents,
    queue_depth,
    read_secret,
    send_probe,
    token_claims,
)
from pytest_aksai.kube import CONFIGMAPS, connect, create_probe_pod, delete_pod, request_token, wait_started
from pytest_aksai.sim import SimCluster, contract

CLIENT_ID = "5b0e9f0c-3a52-4d8e-9f43-2c1f8e6a7d10"


def _ms(action: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, SimCluster(kubeconfig_path=Path(folder) / "kc") as sim:
        cluster = connect(profile="sim", provider="sim", kubeconfig=sim.kubeconfig_path, context="aksai-sim")
        data = (cluster.get(CONFIGMAPS, contract.SIM_CONFIGMAP, contract.SIM_NAMESPACE) or {})["data"]
        advertised = json.loads(data[contract.KEY_AZURE])
        ca = Path(folder) / "ca.pem"
        ca.write_text(advertised["caBundle"])
        target = AzureTarget(
            tenant_id=advertised["tenantId"],
            authority_host=advertised["authorityHost"],
            vault_urls=advertised["keyVaults"],
            amqp_endpoints={n: b["amqpEndpoint"] for n, b in advertised["serviceBus"].items()},
            management_hosts={n: b["fullyQualifiedNamespace"] for n, b in advertised["serviceBus"].items()},
            ca_bundle=str(ca),
            simulated=True,
        )
        baseline, _ = _ms(lambda: cluster.raw("/version"), args.runs)
        hops: dict[str, float] = {}
        hops["TokenRequest"], token = _ms(
            lambda: request_token(cluster, "inference", "inference-sa", "api://AzureADTokenExchange"),
            args.runs,
        )
        issuer = token_claims(token).issuer
        hops["discovery + JWKS"], _ = _ms(lambda: issuer_documents(issuer, target), args.runs)
        hops["Entra ID exchange"], answer = _ms(
            lambda: exchange(target, target.tenant_id, CLIENT_ID, token), args.runs
        )
        assert answer.ok, answer
        hops["Key Vault read (new client)"], read = _ms(
            lambda: read_secret(target, "kv-aksai-lab", "hf-token", answer.credential), args.runs
        )
        assert read.ok, read
        hops["Service Bus send (new connection)"], sent = _ms(
            lambda: send_probe(target, "sb-aksai-lab", "inference-requests", answer.credential, "bench"),
            args.runs,
        )
        assert sent.ok, sent
        bus = exchange(target, target.tenant_id, CLIENT_ID, token, scope=SERVICE_BUS_SCOPE)
        # The workload identity may send and receive, not read entities: the management API's 401 round trip.
        hops["queue depth read (management API, 401)"], depth = _ms(
            lambda: queue_depth(target, "sb-aksai-lab", "inference-requests", bus.credential), args.runs
        )
        assert depth.status == 401, depth
        csi = [
            {
                "name": "spc",
                "csi": {
                    "driver": "secrets-store.csi.k8s.io",
                    "readOnly": True,
                    "volumeAttributes": {"secretProviderClass": "lab-secrets"},
                },
            }
        ]
        mount = [{"name": "spc", "mountPath": "/mnt/secrets", "readOnly": True}]

        def start(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]]) -> bool:
            pod, _ = create_probe_pod(
                cluster, "inference", "inference-sa", {}, "", volumes=volumes, mounts=mounts
            )
            assert pod is not None
            try:
                return wait_started(cluster, "inference", pod["metadata"]["name"], 300)[0]
            finally:
                delete_pod(cluster, "inference", pod["metadata"]["name"])

        hops["pod start, no volume"], plain = _ms(lambda: start([], []), args.runs)
        hops["pod start, SecretProviderClass mounted"], mounted = _ms(lambda: start(csi, mount), args.runs)
        assert plain and mounted
        cluster.close()
    print(f"baseline: GET /version over TLS                 {baseline:8.1f} ms")
    for name, value in hops.items():
        print(f"{name:<44} {value:8.1f} ms   ({value / baseline:6.1f}x baseline)")


if __name__ == "__main__":
    main()
