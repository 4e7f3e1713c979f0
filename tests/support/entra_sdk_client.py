"""Drives the sandbox's Entra ID emulator and its Files emulator (started with --entra
--remote-shares) with Microsoft's Python SDKs: azure-identity gets tokens (client secret,
certificate, workload identity, App Service managed identity) and azure-storage-file-share uses
them (token_intent="backup"). Raw HTTP (requests) checks what the SDKs never send: wrong secrets,
forged assertions, a missing intent header, old versions. Prints what it saw as JSON for
tests/emulators/entra.rs. Usage: entra_sdk_client.py SANDBOX_DIR"""

import base64
import hashlib
import json
import os
import sys
import time
import tomllib
import uuid
from datetime import datetime, timedelta, timezone

import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import (
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareClient,
    generate_account_sas,
)
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import load_pem_x509_certificate

d = sys.argv[1]
sb = json.load(open(os.path.join(d, "sandbox.json")))
config = tomllib.load(open(os.path.join(d, "drscript.toml"), "rb"))
e = sb["entra"]
tenant, client, authority = e["tenant_id"], e["client_id"], e["authority"]
ca = os.path.join(d, e["ca_file"])
os.environ["REQUESTS_CA_BUNDLE"] = ca
os.environ["SSL_CERT_FILE"] = ca
secret_of = lambda name: open(os.path.join(d, "secrets", name)).read().strip()
kw = dict(authority=authority, disable_instance_discovery=True, connection_verify=ca)
STORAGE = "https://storage.azure.com/.default"
seen = {}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def failure(fn):
    """[status, error code] of a call expected to fail, or 'no error'."""
    try:
        fn()
    except HttpResponseError as ex:
        return [ex.status_code, ex.error_code]
    return "no error"


# --- Tokens from the emulator, by each credential of the chain ----------------------------------
secret = secret_of("entra-client.secret")
creds = {
    "secret": ClientSecretCredential(tenant, client, secret, **kw),
    "certificate": CertificateCredential(tenant, client, certificate_path=os.path.join(d, "secrets/entra-client.pem"), **kw),
    "workload_identity": WorkloadIdentityCredential(
        tenant_id=tenant, client_id=client, token_file_path=os.path.join(d, "secrets/entra-federated-token"), **kw
    ),
}
os.environ["IDENTITY_ENDPOINT"] = e["identity_endpoint"]
os.environ["IDENTITY_HEADER"] = secret_of("entra-identity-header")
creds["managed_identity"] = ManagedIdentityCredential()
for name, cred in creds.items():
    t = cred.get_token(STORAGE)
    c = claims(t.token)
    seen[name] = {k: c.get(k) for k in ("aud", "iss", "tid", "oid", "appid")}
    seen[name]["lifetime"] = t.expires_on - int(time.time())

# --- Files with a bearer token -------------------------------------------------------------------
share_url = sb["environments"]["prod"]["share_urls"]["app"]
account_url, share_name = share_url.rsplit("/", 1)
account = account_url.rsplit("/", 1)[1]


def share_with(cred, **more):
    return ShareClient(account_url, share_name, credential=cred, connection_verify=ca, **more)


share = share_with(creds["workload_identity"], token_intent="backup")
seen["root"] = sorted(x["name"] for x in share.get_directory_client("").list_directories_and_files())
share.create_directory("entra-sdk")
f = share.get_file_client("entra-sdk/hello.txt")
f.upload_file(b"hello from an Entra principal")
seen["download"] = f.download_file().readall().decode()
mi_share = share_with(creds["managed_identity"], token_intent="backup")
mi_share.get_file_client("entra-sdk/mi.txt").upload_file(b"managed identity")
seen["mi_listing"] = sorted(x["name"] for x in mi_share.get_directory_client("entra-sdk").list_directories_and_files())
seen["share_quota"] = share.get_share_properties().quota

# Roles, changed at run time through the control endpoint.
control = sb["control"]
app_oid = seen["secret"]["oid"]


def assign(role):
    r = requests.post(f"{control}/roles", json={"account": account, "principal": app_oid, "role": role})
    r.raise_for_status()
    return r.json()


seen["roles_after_reader"] = assign("Storage File Data Privileged Reader")[account][app_oid]
reader = share_with(creds["secret"], token_intent="backup")
seen["reader_lists"] = len(list(reader.get_directory_client("entra-sdk").list_directories_and_files()))
seen["reader_upload"] = failure(lambda: reader.get_file_client("entra-sdk/no.txt").upload_file(b"x"))
seen["reader_delete"] = failure(lambda: reader.get_file_client("entra-sdk/hello.txt").delete_file())
assign(None)
seen["no_role_list"] = failure(lambda: list(reader.get_directory_client("").list_directories_and_files()))
assign("Storage File Data Privileged Contributor")
reader.get_file_client("entra-sdk/again.txt").upload_file(b"contributor again")

# The account key is refused: Shared Key and an account SAS.
key = secret_of(os.path.basename(sb["environments"]["prod"]["share_key_file"]))
keyed = ShareClient(account_url, share_name, credential={"account_name": account, "account_key": key}, connection_verify=ca)
seen["shared_key"] = failure(lambda: list(keyed.get_directory_client("").list_directories_and_files()))
sas = generate_account_sas(
    account, key, ResourceTypes(container=True, object=True), AccountSasPermissions(read=True, list=True),
    datetime.now(timezone.utc) + timedelta(hours=1),
)
sas_share = ShareClient(account_url, share_name, credential=sas, connection_verify=ca)
seen["account_sas"] = failure(lambda: list(sas_share.get_directory_client("").list_directories_and_files()))

# --- Raw requests the SDK would not send ---------------------------------------------------------
token = creds["secret"].get_token(STORAGE).token
listing = f"{share_url}?restype=directory&comp=list"


def raw(headers, url=listing):
    r = requests.get(url, headers=headers, verify=ca)
    return {"status": r.status_code, "code": r.headers.get("x-ms-error-code"), "www": r.headers.get("www-authenticate"), "body": r.text}


bearer = {"Authorization": f"Bearer {token}", "x-ms-version": "2025-05-05"}
seen["no_intent"] = raw(bearer)
seen["bad_intent"] = raw({**bearer, "x-ms-file-request-intent": "restore"})
seen["old_version"] = raw({**bearer, "x-ms-version": "2021-12-02", "x-ms-file-request-intent": "backup"})
seen["share_level_old_version"] = raw(
    {**bearer, "x-ms-version": "2023-01-03", "x-ms-file-request-intent": "backup"}, f"{share_url}?restype=share"
)
parts = token.split(".")
forged = parts[0] + "." + b64url(json.dumps({**claims(token), "oid": "00000000-0000-0000-0000-000000000bad"}).encode()) + "." + parts[2]
seen["forged_token"] = raw({**bearer, "Authorization": f"Bearer {forged}", "x-ms-file-request-intent": "backup"})
arm_token = creds["secret"].get_token("https://management.azure.com/.default").token
seen["management_token_on_files"] = raw({**bearer, "Authorization": f"Bearer {arm_token}", "x-ms-file-request-intent": "backup"})
seen["ok_raw"] = raw({**bearer, "x-ms-file-request-intent": "backup"})["status"]

# --- ARM with an Entra token ---------------------------------------------------------------------
arm = config["azure"]["resource_manager"]
sub, rg, acct = config["storage"]["prod"]["subscription"], config["storage"]["prod"]["resource_group"], config["storage"]["prod"]["account"]
r = requests.get(
    f"{arm}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{acct}?api-version=2023-05-01",
    headers={"Authorization": f"Bearer {arm_token}"},
)
seen["arm"] = {"status": r.status_code, "allowSharedKeyAccess": r.json().get("properties", {}).get("allowSharedKeyAccess")}
r = requests.get(
    f"{arm}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{acct}?api-version=2023-05-01",
    headers={"Authorization": f"Bearer {token}"},
)
seen["arm_with_storage_token"] = r.status_code

# --- The token endpoint's refusals ---------------------------------------------------------------
endpoint = f"{authority}/{tenant}/oauth2/v2.0/token"


def post(form, url=endpoint):
    r = requests.post(url, data=form, verify=ca)
    body = r.json()
    return {"status": r.status_code, "error": body.get("error"), "codes": body.get("error_codes"), "description": body.get("error_description", "")}


base = {"grant_type": "client_credentials", "client_id": client, "scope": STORAGE}
seen["wrong_secret"] = post({**base, "client_secret": "not-the-secret"})
seen["unknown_tenant"] = post({**base, "client_secret": secret}, f"{authority}/00000000-0000-0000-0000-000000000000/oauth2/v2.0/token")
seen["unknown_client"] = post({**base, "client_id": "11111111-1111-1111-1111-111111111111", "client_secret": secret})
seen["scope_without_default"] = post({**base, "scope": "https://storage.azure.com/user_impersonation", "client_secret": secret})
seen["two_scopes"] = post({**base, "scope": STORAGE + " https://management.azure.com/.default", "client_secret": secret})
federated = secret_of("entra-federated-token")
fh, fc, fs = federated.split(".")
fclaims = claims(federated)
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
expired = fh + "." + b64url(json.dumps({**fclaims, "exp": int(time.time()) - 3600}).encode()) + "." + fs
seen["federated_tampered_exp"] = post({**base, "client_assertion_type": JWT_BEARER, "client_assertion": expired})
seen["federated_ok"] = post({**base, "client_assertion_type": JWT_BEARER, "client_assertion": federated})["status"]

pem = open(os.path.join(d, "secrets/entra-client.pem"), "rb").read()
key_obj = serialization.load_pem_private_key(pem, password=None)
cert = load_pem_x509_certificate(pem)
der = cert.public_bytes(serialization.Encoding.DER)
sha1 = hashlib.sha1(der).digest()


def assertion(x5t, aud=endpoint, exp_in=600, jti=None):
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "x5t": x5t}
    body = {"aud": aud, "iss": client, "sub": client, "jti": jti or str(uuid.uuid4()), "nbf": now, "exp": now + exp_in}
    signed = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(body).encode())
    sig = key_obj.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signed + "." + b64url(sig)


def cert_post(a):
    return post({**base, "client_assertion_type": JWT_BEARER, "client_assertion": a})


seen["cert_b64url_x5t"] = cert_post(assertion(b64url(sha1)))["status"]
seen["cert_std_b64_x5t"] = cert_post(assertion(base64.b64encode(sha1).decode()))["status"]
seen["cert_wrong_x5t"] = cert_post(assertion(b64url(hashlib.sha1(b"another certificate").digest())))
seen["cert_wrong_aud"] = cert_post(assertion(b64url(sha1), aud="https://login.microsoftonline.com/x/oauth2/v2.0/token"))
seen["cert_expired"] = cert_post(assertion(b64url(sha1), exp_in=-3600))
jti = str(uuid.uuid4())
cert_post(assertion(b64url(sha1), jti=jti))
seen["cert_replayed_jti"] = cert_post(assertion(b64url(sha1), jti=jti))

# The managed-identity endpoint wants its header.
r = requests.get(e["identity_endpoint"], params={"api-version": "2019-08-01", "resource": "https://storage.azure.com"})
seen["mi_without_header"] = r.status_code
r = requests.get(
    e["identity_endpoint"],
    params={"api-version": "2019-08-01", "resource": "https://storage.azure.com", "client_id": "11111111-1111-1111-1111-111111111111"},
    headers={"X-IDENTITY-HEADER": os.environ["IDENTITY_HEADER"]},
)
seen["mi_other_identity"] = r.status_code
try:
    ClientSecretCredential(tenant, client, "wrong", **kw).get_token(STORAGE)
    seen["sdk_wrong_secret"] = "no error"
except ClientAuthenticationError as ex:
    seen["sdk_wrong_secret"] = "AADSTS7000215" in str(ex)

print(json.dumps(seen))
