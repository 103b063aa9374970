"""The simulated Service Bus refuses an entity link without the claim as AMQP 1.0 and Service Bus do (an
attach with a null terminus, then a detach with `amqp:unauthorized-access`), so the unchanged SDK raises
ServiceBusAuthorizationError with Service Bus's text every time, whatever the machine's load (a refusal
whose attach echoed the terminus let the SDK send first and report `amqp:unknown-error`)."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes
import pytest

from pytest_aksai.azure import SERVICE_BUS_SCOPE, AzureTarget, exchange
from pytest_aksai.sim import SimCluster, contract

WORKLOAD_CLIENT_ID = "5b0e9f0c-3a52-4d8e-9f43-2c1f8e6a7d10"


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> tuple[AzureTarget, object]:
    with SimCluster(time_scale=600, faults=["sb-no-send-claim"]) as sim:
        core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(str(sim.kubeconfig_path)))
        cm = core.read_namespaced_config_map(contract.SIM_CONFIGMAP, contract.SIM_NAMESPACE)
        advertised = json.loads(cm.data[contract.KEY_AZURE])
        ca = Path(tmp_path_factory.mktemp("ca")) / "ca.pem"
        ca.write_text(advertised["caBundle"])
        target = AzureTarget(
            tenant_id=advertised["tenantId"],
            authority_host=advertised["authorityHost"],
            amqp_endpoints={n: b["amqpEndpoint"] for n, b in advertised["serviceBus"].items()},
            ca_bundle=str(ca),
            simulated=True,
        )
        token = core.create_namespaced_service_account_token(
            "inference-sa", "inference", {"spec": {"audiences": ["api://AzureADTokenExchange"]}}
        ).status.token
        answer = exchange(target, target.tenant_id, WORKLOAD_CLIENT_ID, token, scope=SERVICE_BUS_SCOPE)
        assert answer.ok, answer
        yield target, answer.credential


def test_a_link_without_the_send_claim_is_refused_with_service_bus_text_every_time(refusing):
    from azure.servicebus import ServiceBusMessage
    from azure.servicebus.exceptions import ServiceBusAuthorizationError

    target, credential = refusing
    for _ in range(5):
        client = target.service_bus_client("sb-aksai-lab.servicebus.windows.net", credential, retry_total=0)
        with (
            pytest.raises(ServiceBusAuthorizationError) as refused,
            client,
            client.get_queue_sender("inference-requests") as sender,
        ):
            sender.send_messages(ServiceBusMessage("probe"))
        text = str(refused.value)
        assert "Unauthorized access. 'Send' claim(s) are required to perform this operation." in text
        assert "amqp:unauthorized-access" in text
