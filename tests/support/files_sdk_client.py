"""Drives the Azure Files emulator with Microsoft's Python SDK (azure-storage-file-share), which
signs its own Shared Key requests and SAS tokens. Prints what it saw as JSON for
tests/sync/sync_files.rs to assert on. Usage: files_sdk_client.py ACCOUNT_URL ACCOUNT (key on stdin)."""

import hashlib
import json
import sys
from datetime import datetime, timedelta, timezone

from azure.core.exceptions import HttpResponseError
from azure.storage.fileshare import (
    AccountSasPermissions,
    ContentSettings,
    FileSasPermissions,
    ResourceTypes,
    ShareFileClient,
    ShareServiceClient,
    generate_account_sas,
    generate_file_sas,
)

url, account = sys.argv[1], sys.argv[2]
key = sys.stdin.readline().strip()
seen = {}


def failure(fn):
    """The status and error code of a call expected to fail, or 'no error'."""
    try:
        fn()
    except HttpResponseError as e:
        return [e.status_code, e.error_code]
    return "no error"


def names(share, path=""):
    return sorted(x["name"] for x in share.get_directory_client(path).list_directories_and_files())


expiry = datetime.now(timezone.utc) + timedelta(hours=1)

# --- Shared Key, signed by the SDK -------------------------------------------------------------
svc = ShareServiceClient(account_url=url, credential={"account_name": account, "account_key": key})
share = svc.create_share("sdkkey")
share.create_directory("Docs")
f = share.get_file_client("Docs/Case.txt")
f.upload_file(b"first", content_settings=ContentSettings(content_type="text/plain"), metadata={"owner": "dr"})
# The same file under another case: one file, the first case kept, the content replaced.
share.get_file_client("docs/CASE.TXT").upload_file(b"second version")
seen["case_listing"] = names(share, "Docs")
seen["case_listing_other_case"] = names(share, "DOCS")
seen["case_download"] = share.get_file_client("DOCS/case.txt").download_file().readall().decode()

# Properties as the service keeps them.
f.upload_file(b"0123456789" * 1000, content_settings=ContentSettings(content_type="text/csv"), metadata={"a": "1"})
p1 = f.get_file_properties()
f.set_file_metadata({"b": "2"})
p2 = f.get_file_properties()
f.upload_range(b"X" * 10, offset=0, length=10)
p3 = f.get_file_properties()
seen["content_type"] = p1.content_settings.content_type
seen["metadata_before"] = p1.metadata
seen["metadata_after"] = p2.metadata
seen["etags_differ"] = len({p1.etag, p2.etag, p3.etag}) == 3
seen["creation_kept"] = p1.creation_time == p3.creation_time
seen["last_write_moved"] = p3.last_write_time >= p1.last_write_time
# validate_content makes the SDK ask for each range's MD5 and check it.
part = f.download_file(offset=100, length=50, validate_content=True).readall()
seen["range_md5_checked"] = part == (b"0123456789" * 1000)[100:150]
seen["ranges"] = [[r["start"], r["end"]] for r in f.get_ranges()]
copy = share.get_file_client("Docs/copy.txt")
seen["copy_status"] = copy.start_copy_from_url(f.url)["copy_status"]
seen["copy_content_equal"] = copy.download_file().readall() == f.download_file().readall()

# Leases: an infinite lock on writes and deletes.
lease = f.acquire_lease()
seen["lease_state"] = f.get_file_properties().lease.state
seen["lease_write_without_id"] = failure(lambda: f.upload_range(b"L", offset=0, length=1))
seen["lease_write_other_id"] = failure(
    lambda: f.upload_range(b"L", offset=0, length=1, lease="6f9619ff-8b86-d011-b42d-00c04fc964ff"))
seen["lease_delete_without_id"] = failure(lambda: f.delete_file())
seen["lease_acquire_again_other_id"] = failure(lambda: f.acquire_lease(lease_id="6f9619ff-8b86-d011-b42d-00c04fc964ff"))
f.upload_range(b"X", offset=0, length=1, lease=lease)
lease.change("6f9619ff-8b86-d011-b42d-00c04fc964ff")
f.upload_range(b"X", offset=0, length=1, lease=lease)
lease.release()
seen["lease_state_released"] = f.get_file_properties().lease.state
seen["lease_write_without_lease"] = failure(
    lambda: f.upload_range(b"X", offset=0, length=1, lease="6f9619ff-8b86-d011-b42d-00c04fc964ff"))
f.acquire_lease().break_lease()
seen["lease_state_broken"] = f.get_file_properties().lease.state

# Names the service refuses, and trailing dots (trimmed unless kept).
seen["bad_name"] = failure(lambda: share.get_file_client("Docs/bad:name.txt").upload_file(b"x"))
seen["long_name"] = failure(lambda: share.get_file_client("Docs/" + "n" * 256).upload_file(b"x"))
share.get_file_client("Docs/trimmed.").upload_file(b"x")
ShareFileClient(url, "sdkkey", "Docs/kept.", credential={"account_name": account, "account_key": key},
                allow_trailing_dot=True).upload_file(b"x")
seen["dots_listing"] = [n for n in names(share, "Docs") if n.startswith(("trimmed", "kept"))]

# Names that need percent-encoding sign and resolve the same way on both sides.
odd = "Docs/sp ace+%ü€.txt"
share.get_file_client(odd).upload_file(b"odd")
seen["odd_name"] = share.get_file_client(odd).download_file().readall().decode()
share.get_file_client(odd).delete_file()
# Listing details the SDK parses from the emulator's XML.
listed = {x["name"]: x for x in share.get_directory_client("Docs").list_directories_and_files(
    include=["timestamps", "Etag", "Attributes"])}
case = listed["Case.txt"]
seen["listed_attributes"] = str(case.get("file_attributes"))
seen["listed_has_times"] = bool(case.get("creation_time")) and bool(case.get("last_write_time"))
seen["listed_etag_matches"] = case.get("etag") == f.get_file_properties().etag

share.get_file_client("Docs/copy.txt").delete_file()
seen["after_delete"] = names(share, "Docs")

# A key that is not the account's.
wrong = ShareServiceClient(url, credential={"account_name": account, "account_key": "d3Jvbmcta2V5LXdyb25nLWtleQ=="})
seen["wrong_key"] = failure(lambda: wrong.get_share_client("sdkkey").get_share_properties())

# --- SAS, generated by the SDK ------------------------------------------------------------------
rw = AccountSasPermissions(read=True, write=True, create=True, list=True, delete=True)
types = ResourceTypes(container=True, object=True)
sas = generate_account_sas(account, key, types, rw, expiry)
by_sas = ShareServiceClient(url, credential=sas).get_share_client("sdkkey")
by_sas.create_directory("bysas")
by_sas.get_file_client("bysas/one.bin").upload_file(b"a" * 5_000_000)
seen["sas_listing"] = names(by_sas, "bysas")
seen["sas_md5"] = hashlib.md5(by_sas.get_file_client("bysas/one.bin").download_file().readall()).hexdigest()
by_sas.get_file_client("bysas/one.bin").delete_file()
by_sas.get_directory_client("bysas").delete_directory()
seen["sas_after_delete"] = "bysas" in names(by_sas)

here = generate_account_sas(account, key, types, rw, expiry, ip="127.0.0.1")
elsewhere = generate_account_sas(account, key, types, rw, expiry, ip="10.1.2.3-10.1.2.9")
https_only = generate_account_sas(account, key, types, rw, expiry, protocol="https")
read_only = generate_account_sas(account, key, types, AccountSasPermissions(read=True, list=True), expiry)
seen["sip_here"] = names(ShareServiceClient(url, credential=here).get_share_client("sdkkey"), "Docs") != []
seen["sip_elsewhere"] = failure(lambda: ShareServiceClient(url, credential=elsewhere).get_share_client("sdkkey")
                                .get_directory_client("Docs").create_subdirectory("x"))
seen["spr_https"] = failure(lambda: ShareServiceClient(url, credential=https_only).get_share_client("sdkkey")
                            .get_share_properties())
seen["read_only_write"] = failure(lambda: ShareServiceClient(url, credential=read_only).get_share_client("sdkkey")
                                  .get_file_client("Docs/new.txt").upload_file(b"x"))

# A file SAS for one file, read only.
file_sas = generate_file_sas(account, "sdkkey", ["Docs", "Case.txt"], key, FileSasPermissions(read=True), expiry)
one = ShareFileClient(url, "sdkkey", "Docs/Case.txt", credential=file_sas)
seen["file_sas_read"] = len(one.download_file().readall())
seen["file_sas_write"] = failure(lambda: one.upload_range(b"z", offset=0, length=1))
other = ShareFileClient(url, "sdkkey", "Docs/trimmed", credential=file_sas)
seen["file_sas_other_file"] = failure(lambda: other.download_file().readall())

json.dump(seen, sys.stdout)
