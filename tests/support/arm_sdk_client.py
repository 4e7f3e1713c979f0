"""Cross-check of the ARM emulator with Microsoft's own Python management SDKs.

Drives storage account properties, an unplanned failover through the SDK's long-running
operation poller (ARMPolling), and a DNS record set update with If-Match etags, against the
emulator URL given on the command line. Prints what it saw as JSON for the Rust test to check.
"""
import json
import sys

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.mgmt.dns import DnsManagementClient
from azure.mgmt.dns.models import ARecord, RecordSet, SubResource
from azure.mgmt.storage import StorageManagementClient

url, sub, rg, account, zone = sys.argv[1:6]
token = sys.stdin.readline().strip()  # never on the command line


class StaticBearer(SansIOHTTPPolicy):
    """The emulator speaks plain http on loopback, where the SDK's bearer policy refuses tokens."""

    def on_request(self, request):
        request.http_request.headers["Authorization"] = "Bearer " + token


class StaticCredential:
    def get_token(self, *scopes, **kwargs):
        return AccessToken(token, 2**31)


options = dict(base_url=url, authentication_policy=StaticBearer(), polling_interval=0.05, retry_total=3)
out = {}

storage = StorageManagementClient(StaticCredential(), sub, **options)
acc = storage.storage_accounts.get_properties(rg, account, expand="geoReplicationStats")
geo = acc.geo_replication_stats
out["before"] = {
    "primary": acc.primary_location,
    "secondary": acc.secondary_location,
    "sku": acc.sku.name,
    "geo_status": geo.status,
    "last_sync_time": geo.last_sync_time.isoformat() if geo.last_sync_time else None,
    "can_failover": geo.can_failover,
}
poller = storage.storage_accounts.begin_failover(rg, account, failover_type=None, polling_interval=0.05)
# While it runs: the account says so, and a second failover request is refused with an ARM error.
during = storage.storage_accounts.get_properties(rg, account)
out["during"] = {"failover_in_progress": during.failover_in_progress}
try:
    storage.storage_accounts.begin_failover(rg, account, failover_type=None, polling_interval=0.05)
    out["during"]["second_request"] = "accepted"
except HttpResponseError as e:
    out["during"]["second_request"] = e.status_code
    out["during"]["second_request_code"] = e.error.code if e.error else None
poller.result(timeout=60)
acc = storage.storage_accounts.get_properties(rg, account, expand="geoReplicationStats")
out["after"] = {
    "primary": acc.primary_location,
    "secondary": acc.secondary_location,
    "sku": acc.sku.name,
    "failover_in_progress": acc.failover_in_progress,
    "last_geo_failover_time": acc.last_geo_failover_time.isoformat() if acc.last_geo_failover_time else None,
    "can_failover": acc.geo_replication_stats.can_failover,
}

dns = DnsManagementClient(StaticCredential(), sub, **options)
current = dns.record_sets.get(rg, zone, "app", "A")
out["dns_before"] = [r.ipv4_address for r in current.a_records]
dns.record_sets.create_or_update(
    rg, zone, "app", "A", RecordSet(ttl=30, a_records=[ARecord(ipv4_address="10.0.9.9")]), if_match=current.etag
)
try:
    dns.record_sets.create_or_update(
        rg, zone, "app", "A", RecordSet(ttl=30, a_records=[ARecord(ipv4_address="10.0.9.8")]), if_match=current.etag
    )
    out["stale_etag"] = "accepted"
except HttpResponseError as e:
    out["stale_etag"] = e.status_code
    out["stale_etag_code"] = e.error.code if e.error else None
after = dns.record_sets.get(rg, zone, "app", "A")
out["dns_after"] = [r.ipv4_address for r in after.a_records]
out["dns_ttl"] = after.ttl

# The two shapes that hold no records: a record set left empty, and an alias record set.
vacant = dns.record_sets.get(rg, zone, "vacant", "A")
out["vacant"] = {"records": [r.ipv4_address for r in vacant.a_records or []], "etag": bool(vacant.etag),
                 "target": vacant.target_resource.id if vacant.target_resource else None}
alias = dns.record_sets.get(rg, zone, "@", "A")
out["alias"] = {"records": [r.ipv4_address for r in alias.a_records or []],
                "target": alias.target_resource.id if alias.target_resource else None}
# The SDK creates both shapes the way the portal and the CLI do.
made = dns.record_sets.create_or_update(rg, zone, "empty2", "A", RecordSet(ttl=60), if_none_match="*")
out["created_empty"] = [r.ipv4_address for r in made.a_records or []]
made = dns.record_sets.create_or_update(
    rg, zone, "www", "A", RecordSet(ttl=60, target_resource=SubResource(id=alias.target_resource.id)), if_none_match="*"
)
out["created_alias"] = made.target_resource.id if made.target_resource else None
try:
    dns.record_sets.create_or_update(
        rg, zone, "both", "A",
        RecordSet(ttl=60, a_records=[ARecord(ipv4_address="10.0.0.7")], target_resource=SubResource(id=alias.target_resource.id)),
    )
    out["records_and_alias"] = "accepted"
except HttpResponseError as e:
    out["records_and_alias"] = e.status_code
print(json.dumps(out))
