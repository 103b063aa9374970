"""The only code that talks to Azure: the Workload Identity chain hop by hop, with the official SDKs
(`azure-identity`, `azure-keyvault-secrets`) unchanged; see `_target.py` for the sim-mode arguments.
Imported lazily: `import pytest_aksai.azure` loads no SDK until a name is used."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_aksai._lazy import lazy_getattr

if TYPE_CHECKING:
    from pytest_aksai.azure._chain import (
        SERVICE_BUS_SCOPE,
        VAULT_SCOPE,
        AadstsMeaning,
        Exchange,
        IssuerDocuments,
        KedaIdentity,
        QueueDepth,
        QueueSend,
        SecretMount,
        SecretRead,
        TokenClaims,
        TokenRotation,
        aadsts_meaning,
        exchange,
        issuer_documents,
        queue_depth,
        read_secret,
        send_probe,
        token_claims,
    )
    from pytest_aksai.azure._manifests import (
        CLIENT_ID_ANNOTATION,
        EXPIRATION_ANNOTATION,
        MAX_EXPIRATION,
        MIN_EXPIRATION,
        TOKEN_EXCHANGE_AUDIENCE,
        USE_LABEL,
        PodTemplate,
        ProviderClass,
        WorkloadIdentity,
        provider_class,
        workload_identities,
    )
    from pytest_aksai.azure._queue import QueueDemand
    from pytest_aksai.azure._target import AzureTarget, fingerprint

_LAZY = {
    **{
        name: "._chain"
        for name in (
            "SERVICE_BUS_SCOPE",
            "VAULT_SCOPE",
            "AadstsMeaning",
            "Exchange",
            "IssuerDocuments",
            "QueueSend",
            "SecretRead",
            "TokenClaims",
            "aadsts_meaning",
            "exchange",
            "issuer_documents",
            "read_secret",
            "send_probe",
            "token_claims",
            "KedaIdentity",
            "QueueDepth",
            "SecretMount",
            "TokenRotation",
            "queue_depth",
        )
    },
    **{
        name: "._manifests"
        for name in (
            "CLIENT_ID_ANNOTATION",
            "EXPIRATION_ANNOTATION",
            "MAX_EXPIRATION",
            "MIN_EXPIRATION",
            "TOKEN_EXCHANGE_AUDIENCE",
            "USE_LABEL",
            "PodTemplate",
            "ProviderClass",
            "WorkloadIdentity",
            "provider_class",
            "workload_identities",
        )
    },
    "AzureTarget": "._target",
    "fingerprint": "._target",
    "QueueDemand": "._queue",
}
__all__ = [
    "CLIENT_ID_ANNOTATION",
    "EXPIRATION_ANNOTATION",
    "MAX_EXPIRATION",
    "MIN_EXPIRATION",
    "SERVICE_BUS_SCOPE",
    "TOKEN_EXCHANGE_AUDIENCE",
    "USE_LABEL",
    "VAULT_SCOPE",
    "AadstsMeaning",
    "AzureTarget",
    "Exchange",
    "IssuerDocuments",
    "KedaIdentity",
    "PodTemplate",
    "ProviderClass",
    "QueueDemand",
    "QueueDepth",
    "QueueSend",
    "SecretMount",
    "SecretRead",
    "TokenClaims",
    "TokenRotation",
    "WorkloadIdentity",
    "aadsts_meaning",
    "exchange",
    "fingerprint",
    "issuer_documents",
    "provider_class",
    "queue_depth",
    "read_secret",
    "send_probe",
    "token_claims",
    "workload_identities",
]
__getattr__ = lazy_getattr(globals(), _LAZY)
