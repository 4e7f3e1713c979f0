//! The REST versions (`x-ms-version`, SAS `sv`) the emulator answers: the File service versions
//! from 2019-02-02 (the first with the SMB properties drscript and azcopy send, such as
//! `x-ms-file-last-write-time`) to the newest documented one. Like the service, it answers with
//! the version the request asked for, and refuses a version it does not know.

/// Every documented File service version from 2019-02-02 on, oldest first.
pub const SUPPORTED: &[&str] = &[
    "2019-02-02",
    "2019-07-07",
    "2019-10-10",
    "2019-12-12",
    "2020-02-10",
    "2020-04-08",
    "2020-06-12",
    "2020-08-04",
    "2020-10-02",
    "2020-12-06",
    "2021-02-12",
    "2021-04-10",
    "2021-06-08",
    "2021-08-06",
    "2021-10-04",
    "2021-12-02",
    "2022-11-02",
    "2023-01-03",
    "2023-05-03",
    "2023-08-03",
    "2023-11-03",
    "2024-02-04",
    "2024-05-04",
    "2024-08-04",
    "2024-11-04",
    "2025-01-05",
    "2025-05-05",
    "2025-07-05",
    "2025-11-05",
    "2026-02-06",
    "2026-04-06",
    "2026-06-06",
    "2026-10-06",
];

/// The version answered when a request names none (an anonymous or malformed request).
pub const NEWEST: &str = "2026-10-06";

pub fn is_supported(v: &str) -> bool {
    SUPPORTED.contains(&v)
}

/// From 2022-11-02 a path may keep trailing dots when `x-ms-allow-trailing-dot: true` is sent.
pub fn allows_trailing_dot_header(v: &str) -> bool {
    v >= "2022-11-02"
}
