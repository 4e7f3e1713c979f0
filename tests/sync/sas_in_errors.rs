//! No SAS in any output when Azure Files or Blob misbehaves: every error path of the two clients
//! (connection refused, reset in the middle of a body, 4xx with and without a body, 5xx, a server
//! that goes silent) driven through the real binary with the SAS on the command line, in the
//! config, and in a runbook; then stdout, stderr, the log file, the journal and the reports are
//! searched for the signature and for every other field of the token.
//!
//! The misbehaving service is a few lines of HTTP here: real services fail in these ways only
//! when they want to. It answers enough of each protocol (directory properties and listing for
//! Files, container properties and listing for Blob) for the failure to happen where a sync
//! reads file content, or answers every request with the failure.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use crate::test::{self, Test};

/// The token's fields: distinctive values, so that any of them found in an output is a leak.
const SIG: &str = "U2FzU2lnbmF0dXJlRm9yTGVha1Rlc3Rz+/0=";
const SV: &str = "2021-08-06";
const ST: &str = "2026-01-02T03:04:05Z";
const SE: &str = "2098-07-08T09:10:11Z";
const SP: &str = "rl";
const SPR: &str = "https,http";

fn sas() -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("sv", SV)
        .append_pair("st", ST)
        .append_pair("se", SE)
        .append_pair("sr", "s")
        .append_pair("sp", SP)
        .append_pair("spr", SPR)
        .append_pair("sig", SIG);
    q.finish()
}

/// What must not appear anywhere: each value as sent in a URL and as decoded.
fn needles() -> Vec<String> {
    let mut out = Vec::new();
    for (key, value) in [("sig", SIG), ("sv", SV), ("st", ST), ("se", SE), ("sp", SP), ("spr", SPR)] {
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        // Two-letter permission strings occur in ordinary words: look for them as a field.
        if value.len() > 4 {
            out.push(value.to_string());
            out.push(encoded.clone());
        }
        out.push(format!("{key}={encoded}"));
        out.push(format!("{key}={value}"));
    }
    out.sort();
    out.dedup();
    out
}

/// The ways a service fails, chosen by the share or container name in the request path.
const MODES: [&str; 5] = ["reset", "forbidden", "conflict", "unavailable", "silent"];

/// A tiny HTTP/1.1 server that serves the start of the Files and Blob protocols and then fails
/// as its path says. Runs until the test process ends.
fn misbehaving_service() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    port
}

/// A port with nothing listening on it.
fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn serve(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let target = lines.next().unwrap_or_default().split(' ').nth(1).unwrap_or("/").to_string();
    let host = lines
        .find_map(|l| l.strip_prefix("host: ").or_else(|| l.strip_prefix("Host: ")))
        .unwrap_or("127.0.0.1")
        .to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mode = segments.get(1).copied().unwrap_or_default();
    let has = |pair: &str| query.split('&').any(|p| p == pair);
    let listing = has("comp=list");
    let properties = (has("restype=directory") || has("restype=container")) && !listing;
    let echo = format!("http://{host}{target}");
    let field =
        |key: &str| url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
    match mode {
        // The protocol goes well until the content of a file is read.
        "reset" if properties => respond(&mut stream, "200 OK", &[], ""),
        "reset" if listing && has("restype=directory") => respond(
            &mut stream,
            "200 OK",
            &[("content-type", "application/xml")],
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Entries><File><Name>f.txt</Name>\
             <Properties><Content-Length>1000</Content-Length></Properties></File></Entries><NextMarker /></EnumerationResults>",
        ),
        "reset" if listing => respond(
            &mut stream,
            "200 OK",
            &[("content-type", "application/xml")],
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Blobs><Blob><Name>f.txt</Name>\
             <Properties><Content-Length>1000</Content-Length></Properties></Blob></Blobs><NextMarker /></EnumerationResults>",
        ),
        "reset" => {
            // Promise 1000 bytes, send 100, and drop the connection.
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\ncontent-type: application/octet-stream\r\n\r\n",
            );
            let _ = stream.write_all(&[b'x'; 100]);
            let _ = stream.flush();
            let _ = stream.shutdown(Shutdown::Both);
        }
        // As Azure refuses a SAS: the detail spells out the string to sign, fields included.
        "forbidden" => {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to \
                 authenticate the request. Make sure the value of Authorization header is formed correctly including the \
                 signature.\nRequestId:0f1e\nTime:2026-12-01T10:00:00.0000000Z</Message><AuthenticationErrorDetail>Signature \
                 did not match. String to sign used was {}\n{}\n{}\n/file/acct{path}\n\n\n{}</AuthenticationErrorDetail></Error>",
                field("sp").unwrap_or_default(),
                field("st").unwrap_or_default(),
                field("se").unwrap_or_default(),
                field("sv").unwrap_or_default(),
            );
            respond(
                &mut stream,
                "403 Server failed to authenticate the request.",
                &[("content-type", "application/xml"), ("x-ms-error-code", "AuthenticationFailed")],
                &body,
            );
        }
        "conflict" => respond(&mut stream, "409 Conflict", &[], ""),
        // A gateway in front of the service that echoes the URL it could not serve.
        "unavailable" => respond(
            &mut stream,
            "503 Service Unavailable",
            &[("content-type", "application/xml")],
            &format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code><Message>No backend for {echo} \
                 (query {query})</Message></Error>"
            ),
        ),
        // Accepts, reads the request, and never answers.
        _ => std::thread::sleep(Duration::from_secs(30)),
    }
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, &str)], body: &str) {
    let mut text = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    let _ = stream.write_all(text.as_bytes());
    let _ = stream.flush();
}

/// A config whose `dr` environment has one share per failure, Files and Blob, SAS from `$APP_SAS`.
fn config(port: u16, refused: u16) -> String {
    let mut shares = String::new();
    for mode in MODES {
        shares.push_str(&format!(
            "files_{mode} = {{ url = \"files+http://127.0.0.1:{port}/acct/{mode}/dir\", sas_env = \"APP_SAS\" }}\n\
             blob_{mode} = {{ url = \"blob+http://127.0.0.1:{port}/acct/{mode}/dir\", sas_env = \"APP_SAS\" }}\n"
        ));
    }
    shares.push_str(&format!(
        "files_refused = {{ url = \"files+http://127.0.0.1:{refused}/acct/refused/dir\", sas_env = \"APP_SAS\" }}\n\
         blob_refused = {{ url = \"blob+http://127.0.0.1:{refused}/acct/refused/dir\", sas_env = \"APP_SAS\" }}\n"
    ));
    format!(
        "[environments.dr]\nnamespace = \"adeptia\"\nrelease = \"ac\"\ngateway = \"https://dr.example.com\"\n\
         [environments.dr.shares]\n{shares}"
    )
}

fn assert_no_sas(what: &str, ran: &test::Ran, config: &str) {
    // The config names the variable, never the value; the test's own files are left out.
    let written = ran.all_files().replace(config, "");
    let log = std::fs::read_to_string(ran.path().join("run.log")).unwrap_or_default();
    assert!(!log.is_empty() || !ran.stderr.is_empty(), "{what}: nothing was logged");
    for needle in needles() {
        for (place, text) in [("stdout", &ran.stdout), ("stderr", &ran.stderr), ("a written file", &written)] {
            assert!(!text.contains(&needle), "{what}: {place} leaks `{needle}`:\n{text}");
        }
    }
}

/// Every failure, each kind of endpoint, the SAS on the command line and in the config:
/// `drscript sync` fails with a message naming the URL (without its query) and leaks nothing.
#[test]
fn a_failing_sync_shows_no_part_of_the_sas_anywhere() {
    let port = misbehaving_service();
    let refused = refused_port();
    let cfg = config(port, refused);
    let sas = sas();
    let mut modes: Vec<(&str, u16)> = MODES.iter().map(|m| (*m, port)).collect();
    modes.push(("refused", refused));
    for (mode, port) in &modes {
        for scheme in ["files", "blob"] {
            let url = format!("{scheme}+http://127.0.0.1:{port}/acct/{mode}/dir?{sas}");
            let share = format!("dr.shares.{scheme}_{mode}");
            for src in [url.as_str(), share.as_str()] {
                let what =
                    format!("{scheme} {mode} from {}", if src == share { "the config" } else { "the command line" });
                let ran = Test::new()
                    .config(&cfg)
                    .env("APP_SAS", &sas)
                    .args(&["--log-file", "run.log", "-vv", "sync", src, "out", "--timeout", "2", "--attempts", "3"])
                    .status(exit_code_of_failed_sync())
                    .run();
                let shown = format!("127.0.0.1:{port}/acct/{mode}");
                assert!(ran.stderr.contains(&shown), "{what}: the error names the URL:\n{}", ran.stderr);
                assert_no_sas(&what, &ran, &cfg);
            }
        }
    }
}

/// The exit code of a sync that failed on the service side (`Error::exit_code` of an action).
fn exit_code_of_failed_sync() -> i32 {
    1
}

/// The same failures inside a runbook: the step fails, and the journal and the reports of the
/// run (under the state dir's `runs/`) hold no part of the token either.
#[test]
fn a_runbook_whose_sync_fails_keeps_the_sas_out_of_journal_and_reports() {
    let port = misbehaving_service();
    let refused = refused_port();
    let cfg = config(port, refused);
    // A silent server is covered above; a runbook would wait out the default timeout.
    for mode in ["reset", "forbidden", "conflict", "unavailable", "refused"] {
        for scheme in ["files", "blob"] {
            let script =
                format!("let dr = env(\"dr\");\nstep(\"copy\", || sync_share(dr.shares.{scheme}_{mode}, \"out\"));\n");
            let ran = Test::new()
                .config(&cfg)
                .script(&script)
                .env("APP_SAS", &sas())
                .args(&["--log-file", "run.log", "-vv", "run", "script.rhai", "--yes"])
                .status(1)
                .run();
            let what = format!("runbook {scheme} {mode}");
            assert!(!ran.runs().is_empty(), "{what}: the run has a folder under .drscript/runs");
            let written = ran.all_files().replace(&cfg, "").replace(&script, "");
            assert!(written.contains("/acct/"), "{what}: the journal or report names the share's URL");
            assert_no_sas(&what, &ran, &cfg);
        }
    }
}
