"""Drives the real Microsoft client libraries (msal, azure-identity) against a
running wisp, as configured by the JSON file named in WISP_COMPAT_CONFIG, and
checks every token against the JWKS from the discovery document with a generic
JWT library (PyJWT). Prints one line per flow and a closing 'N passed, N failed'.
"""
import json
import os
import sys
import time
import traceback

import jwt
import requests

CONFIG = json.load(open(os.environ["WISP_COMPAT_CONFIG"]))
AUTHORITY = CONFIG["authority"]          # https://localhost:PORT (no tenant)
CA = CONFIG["ca_file"]
AZURE_VARS = [
    "AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE", "AZURE_POD_IDENTITY_AUTHORITY_HOST", "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET",
    "MSAL_FORCE_REGION", "AZURE_REGIONAL_AUTHORITY_NAME", "MSAL_MANAGED_IDENTITY_ENDPOINT",
]
RESULTS = []


def clean_env(**values):
    for name in AZURE_VARS:
        os.environ.pop(name, None)
    os.environ.update(values)


def verify(token, tenant, audience, client_id, roles):
    """Checks signature against the tenant's JWKS (found via discovery) and the claims."""
    discovery = requests.get(f"{AUTHORITY}/{tenant}/v2.0/.well-known/openid-configuration", verify=CA).json()
    jwks = jwt.PyJWKClient(discovery["jwks_uri"], ssl_context=__import__("ssl").create_default_context(cafile=CA))
    key = jwks.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=audience,
                        options={"require": ["exp", "iss", "aud"]})
    expected_issuers = {discovery["issuer"], f"{AUTHORITY}/{tenant}/"}
    assert claims["iss"] in expected_issuers, claims["iss"]
    assert claims["tid"] == tenant, claims
    assert claims.get("azp", claims.get("appid")) == client_id, claims
    assert len(claims["oid"]) == 36 and claims["sub"], claims
    assert claims["exp"] > time.time() + 60, claims
    for role in roles:
        assert role in claims.get("roles", []), claims
    return claims


def flow(name):
    def wrap(fn):
        started = time.time()
        try:
            fn()
            RESULTS.append(True)
            print(f"ok   {name} ({time.time() - started:.2f}s)")
        except Exception:
            RESULTS.append(False)
            print(f"FAIL {name} ({time.time() - started:.2f}s)")
            traceback.print_exc()
        return fn
    return wrap


from azure.identity import (CertificateCredential, ClientAssertionCredential, ClientSecretCredential,
                            ManagedIdentityCredential, WorkloadIdentityCredential)
from azure.core.exceptions import ClientAuthenticationError
import msal

T = CONFIG["tenant"]
SCOPE = "api://orders/.default"
AUD = CONFIG["orders_app_id"]
ROLES = ["Orders.Read"]
os.environ["REQUESTS_CA_BUNDLE"] = CA  # msal honours it over its own verify=


@flow("azure-identity ClientAssertionCredential (external GitHub assertion)")
def _():
    clean_env()
    cred = ClientAssertionCredential(T, CONFIG["assertion_client"], lambda: CONFIG["github_assertion"],
                                     authority=AUTHORITY, connection_verify=CA)
    verify(cred.get_token(SCOPE).token, T, AUD, CONFIG["assertion_client"], ROLES)


@flow("azure-identity WorkloadIdentityCredential (token file)")
def _():
    clean_env(AZURE_AUTHORITY_HOST=AUTHORITY, AZURE_TENANT_ID=T, AZURE_CLIENT_ID=CONFIG["assertion_client"],
              AZURE_FEDERATED_TOKEN_FILE=CONFIG["github_token_file"])
    cred = WorkloadIdentityCredential(connection_verify=CA)
    verify(cred.get_token(SCOPE).token, T, AUD, CONFIG["assertion_client"], ROLES)


@flow("azure-identity ClientSecretCredential")
def _():
    clean_env()
    cred = ClientSecretCredential(T, CONFIG["secret_client"], CONFIG["secret"], authority=AUTHORITY,
                                  disable_instance_discovery=True, connection_verify=CA)
    verify(cred.get_token(SCOPE).token, T, AUD, CONFIG["secret_client"], ROLES)


@flow("azure-identity CertificateCredential")
def _():
    clean_env()
    cred = CertificateCredential(T, CONFIG["cert_client"], certificate_path=CONFIG["cert_pem_file"],
                                 authority=AUTHORITY, disable_instance_discovery=True, connection_verify=CA)
    verify(cred.get_token(SCOPE).token, T, AUD, CONFIG["cert_client"], ROLES)


@flow("azure-identity ManagedIdentityCredential, IMDS, system-assigned")
def _():
    clean_env(AZURE_POD_IDENTITY_AUTHORITY_HOST=CONFIG["imds_host"])
    token = ManagedIdentityCredential().get_token(SCOPE).token
    verify(token, T, AUD, CONFIG["system_client_id"], ROLES)


@flow("azure-identity ManagedIdentityCredential, IMDS, user-assigned")
def _():
    clean_env(AZURE_POD_IDENTITY_AUTHORITY_HOST=CONFIG["imds_host"])
    token = ManagedIdentityCredential(client_id=CONFIG["worker_client_id"]).get_token(SCOPE).token
    verify(token, T, AUD, CONFIG["worker_client_id"], ROLES)


@flow("azure-identity ManagedIdentityCredential, App Service, system- and user-assigned")
def _():
    clean_env(IDENTITY_ENDPOINT=CONFIG["app_service_endpoint"], IDENTITY_HEADER=CONFIG["app_service_header"])
    verify(ManagedIdentityCredential().get_token(SCOPE).token, T, AUD, CONFIG["system_client_id"], ROLES)
    token = ManagedIdentityCredential(client_id=CONFIG["worker_client_id"]).get_token(SCOPE).token
    verify(token, T, AUD, CONFIG["worker_client_id"], ROLES)


@flow("managed identity as a federated credential, multi-tenant app in another tenant")
def _():
    clean_env(AZURE_POD_IDENTITY_AUTHORITY_HOST=CONFIG["imds_host"])
    mi = ManagedIdentityCredential(client_id=CONFIG["worker_client_id"])
    cred = ClientAssertionCredential(CONFIG["customer_tenant"], CONFIG["saas_client"],
                                     lambda: mi.get_token("api://AzureADTokenExchange/.default").token,
                                     authority=AUTHORITY, connection_verify=CA)
    token = cred.get_token("api://orders/.default").token
    verify(token, CONFIG["customer_tenant"], CONFIG["customer_orders_app_id"], CONFIG["saas_client"], ROLES)


def msal_app(client_id, credential):
    return msal.ConfidentialClientApplication(client_id, client_credential=credential, authority=f"{AUTHORITY}/{T}",
                                              instance_discovery=False)


def msal_token(app):
    result = app.acquire_token_for_client(scopes=[SCOPE])
    assert "access_token" in result, result
    return result["access_token"]


@flow("msal ConfidentialClientApplication with a secret")
def _():
    clean_env(REQUESTS_CA_BUNDLE=CA)
    verify(msal_token(msal_app(CONFIG["secret_client"], CONFIG["secret"])), T, AUD, CONFIG["secret_client"], ROLES)


@flow("msal ConfidentialClientApplication with a certificate")
def _():
    clean_env(REQUESTS_CA_BUNDLE=CA)
    credential = {"private_key": open(CONFIG["cert_key_file"]).read(), "thumbprint": CONFIG["cert_thumbprint_hex"],
                  "public_certificate": open(CONFIG["cert_only_file"]).read()}
    verify(msal_token(msal_app(CONFIG["cert_client"], credential)), T, AUD, CONFIG["cert_client"], ROLES)


@flow("msal ConfidentialClientApplication with client_assertion")
def _():
    clean_env(REQUESTS_CA_BUNDLE=CA)
    app = msal_app(CONFIG["assertion_client"], {"client_assertion": CONFIG["github_assertion"]})
    verify(msal_token(app), T, AUD, CONFIG["assertion_client"], ROLES)


@flow("refusal: a wrong subject surfaces as AADSTS700213, quickly")
def _():
    clean_env()
    cred = ClientAssertionCredential(T, CONFIG["assertion_client"], lambda: CONFIG["wrong_subject_assertion"],
                                     authority=AUTHORITY, connection_verify=CA)
    started = time.time()
    try:
        cred.get_token(SCOPE)
        raise AssertionError("a wrong subject was accepted")
    except ClientAuthenticationError as e:
        assert "AADSTS700213" in str(e), e
    assert time.time() - started < 5, "no retry storm"


@flow("refusal: an unknown managed identity returns promptly")
def _():
    clean_env(AZURE_POD_IDENTITY_AUTHORITY_HOST=CONFIG["imds_host"])
    started = time.time()
    try:
        ManagedIdentityCredential(client_id="00000000-0000-0000-0000-00000000dead").get_token(SCOPE)
        raise AssertionError("an unknown identity got a token")
    except Exception as e:  # CredentialUnavailableError
        assert "identity" in str(e).lower(), e
    assert time.time() - started < 5, "no retry storm"


passed = sum(RESULTS)
print(f"{passed} passed, {len(RESULTS) - passed} failed")
sys.exit(0 if all(RESULTS) else 1)
