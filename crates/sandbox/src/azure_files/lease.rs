//! File leases (Lease File, version 2019-02-02 and later): an infinite lock on writes and
//! deletes, acquired, changed, released or broken by ID. While a file is leased, every write
//! or delete must carry its ID; a read may, and must then match.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use super::handler::{R, Req, existing_file, file_answer};
use super::props;
use super::responses::{bad_request, error};

fn conflict(code: &str, message: &str) -> Response {
    error(StatusCode::CONFLICT, code, message, None)
}

fn precondition(code: &str, message: &str) -> Response {
    error(StatusCode::PRECONDITION_FAILED, code, message, None)
}

/// A lease ID as the service compares it: any GUID form, case-insensitively.
fn normalize(id: &str) -> Option<String> {
    let hex: String = id.trim().trim_matches(|c| c == '{' || c == '}').chars().filter(|c| *c != '-').collect();
    (hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| hex.to_ascii_lowercase())
}

fn new_id() -> String {
    let h = format!("{:032x}", rand::random::<u128>());
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Checks a write or delete of an existing file (or a read carrying a lease ID) against the
/// file's lease.
pub(super) fn check(req: &Req<'_>, path: &std::path::Path, is_write: bool) -> Result<(), Response> {
    let held = req.props(path).lease;
    let given = req.h("x-ms-lease-id");
    match (held, given) {
        (None, None) => Ok(()),
        (None, Some(_)) => {
            Err(precondition("LeaseNotPresentWithFileOperation", "There is currently no lease on the file."))
        }
        (Some(_), None) if !is_write => Ok(()),
        (Some(_), None) => Err(precondition(
            "LeaseIdMissing",
            "There is currently a lease on the file and no lease ID was specified in the request.",
        )),
        (Some(held), Some(given)) if normalize(&held) == normalize(given) => Ok(()),
        (Some(_), Some(_)) => Err(precondition(
            "LeaseIdMismatchWithFileOperation",
            "The lease ID specified did not match the lease ID for the file.",
        )),
    }
}

/// Lease File: `x-ms-lease-action` acquire | change | release | break.
pub(super) fn lease_file(req: &Req<'_>) -> R {
    req.authorize('w', 'o')?;
    let (p, _) = existing_file(req)?;
    let held = req.props(&p).lease;
    let given = req.h("x-ms-lease-id").map(str::to_string);
    let proposed = req.h("x-ms-proposed-lease-id").map(str::to_string);
    for (name, v) in [("x-ms-lease-id", &given), ("x-ms-proposed-lease-id", &proposed)] {
        if let Some(v) = v
            && normalize(v).is_none()
        {
            return Err(props::invalid_header(name, v));
        }
    }
    let same = |a: &str, b: &str| normalize(a) == normalize(b);
    let action = req.h("x-ms-lease-action").unwrap_or("").to_ascii_lowercase();
    let (status, new_lease, answer_id) = match action.as_str() {
        "acquire" => {
            match req.h("x-ms-lease-duration") {
                Some("-1") => {}
                Some(v) => return Err(props::invalid_header("x-ms-lease-duration", v)),
                None => {
                    return Err(bad_request(
                        "MissingRequiredHeader",
                        "An HTTP header that's mandatory for this request is not specified: x-ms-lease-duration",
                    ));
                }
            }
            let id = proposed.clone().unwrap_or_else(new_id);
            if let Some(h) = &held
                && !same(h, &id)
            {
                return Err(conflict("LeaseAlreadyPresent", "There is already a lease present."));
            }
            (StatusCode::CREATED, Some(id.clone()), Some(id))
        }
        "release" | "change" => {
            let Some(given) = given else {
                return Err(bad_request(
                    "MissingRequiredHeader",
                    "An HTTP header that's mandatory for this request is not specified: x-ms-lease-id",
                ));
            };
            let Some(h) = &held else {
                return Err(conflict("LeaseNotPresentWithLeaseOperation", "There is currently no lease on the file."));
            };
            if !same(h, &given) {
                return Err(conflict(
                    "LeaseIdMismatchWithLeaseOperation",
                    "The lease ID specified did not match the lease ID for the file.",
                ));
            }
            if action == "release" {
                (StatusCode::OK, None, None)
            } else {
                let Some(new) = proposed else {
                    return Err(bad_request(
                        "MissingRequiredHeader",
                        "An HTTP header that's mandatory for this request is not specified: x-ms-proposed-lease-id",
                    ));
                };
                (StatusCode::OK, Some(new.clone()), Some(new))
            }
        }
        "break" => {
            if held.is_none() {
                return Err(conflict("LeaseNotPresentWithLeaseOperation", "There is currently no lease on the file."));
            }
            (StatusCode::ACCEPTED, None, None)
        }
        other => return Err(props::invalid_header("x-ms-lease-action", other)),
    };
    req.state.props.set_lease(&p, new_lease);
    let mut r = file_answer(req, status, &p)?;
    if let Some(id) = answer_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        r.headers_mut().insert("x-ms-lease-id", id);
    }
    if action == "break" {
        r.headers_mut().insert("x-ms-lease-time", HeaderValue::from_static("0"));
    }
    Ok(r)
}

/// The lease headers of Get File / Get File Properties.
pub(super) fn add_headers(r: &mut Response, lease: Option<&str>) {
    let h = r.headers_mut();
    if lease.is_some() {
        h.insert("x-ms-lease-state", HeaderValue::from_static("leased"));
        h.insert("x-ms-lease-status", HeaderValue::from_static("locked"));
        h.insert("x-ms-lease-duration", HeaderValue::from_static("infinite"));
    } else {
        h.insert("x-ms-lease-state", HeaderValue::from_static("available"));
        h.insert("x-ms-lease-status", HeaderValue::from_static("unlocked"));
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn lease_ids_compare_as_guids() {
        let a = normalize("{6F9619FF-8B86-D011-B42D-00C04FC964FF}");
        assert_eq!(a, normalize("6f9619ff8b86d011b42d00c04fc964ff"));
        assert!(normalize("not-a-guid").is_none());
    }
}
