//! A small builder around the real binary: files, args, env, stdin → status, stdout, stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use crate::BIN;

pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    status: i32,
    stdout: Vec<String>,
    stderr: Vec<String>,
    stdout_not: Vec<String>,
    stderr_not: Vec<String>,
}

pub struct Ran {
    pub dir: tempfile::TempDir,
    pub stdout: String,
    pub stderr: String,
}

impl Default for Test {
    fn default() -> Test {
        Test::new()
    }
}

impl Test {
    pub fn new() -> Test {
        Test::in_dir(tempfile::tempdir().unwrap())
    }

    fn in_dir(dir: tempfile::TempDir) -> Test {
        Test {
            dir,
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            status: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_not: Vec::new(),
            stderr_not: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(self, name: &str, contents: &str) -> Test {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    pub fn script(self, contents: &str) -> Test {
        self.file("script.rhai", contents)
    }

    pub fn config(self, contents: &str) -> Test {
        self.file("drscript.toml", contents)
    }

    pub fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    #[allow(dead_code)]
    pub fn env(mut self, key: &str, value: &str) -> Test {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn stdin(mut self, input: &str) -> Test {
        self.stdin = Some(input.to_string());
        self
    }

    pub fn status(mut self, code: i32) -> Test {
        self.status = code;
        self
    }

    pub fn stdout_has(mut self, text: &str) -> Test {
        self.stdout.push(text.to_string());
        self
    }

    pub fn stderr_has(mut self, text: &str) -> Test {
        self.stderr.push(text.to_string());
        self
    }

    pub fn stdout_lacks(mut self, text: &str) -> Test {
        self.stdout_not.push(text.to_string());
        self
    }

    pub fn stderr_lacks(mut self, text: &str) -> Test {
        self.stderr_not.push(text.to_string());
        self
    }

    /// The arguments: as given, or just `script.rhai` when a script was written and none given.
    fn effective_args(&self) -> Vec<String> {
        if self.args.is_empty() && self.dir.path().join("script.rhai").exists() {
            vec!["script.rhai".to_string()]
        } else {
            self.args.clone()
        }
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(&*BIN);
        command
            .args(self.effective_args())
            .current_dir(self.dir.path())
            .env_remove("DRSCRIPT_CONFIG")
            .env("NO_COLOR", "1")
            .env("HOME", self.dir.path());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    pub fn run(self) -> Ran {
        let mut command = self.command();
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("the drscript binary runs");
        let input = self.stdin.clone().unwrap_or_default();
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let output: Output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let status = output.status.code().unwrap_or(-1);
        let context = format!("args {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}", self.args);
        assert_eq!(status, self.status, "exit status\n{context}");
        for s in &self.stdout {
            assert!(stdout.contains(s.as_str()), "stdout lacks {s:?}\n{context}");
        }
        for s in &self.stderr {
            assert!(stderr.contains(s.as_str()), "stderr lacks {s:?}\n{context}");
        }
        for s in &self.stdout_not {
            assert!(!stdout.contains(s.as_str()), "stdout has {s:?}\n{context}");
        }
        for s in &self.stderr_not {
            assert!(!stderr.contains(s.as_str()), "stderr has {s:?}\n{context}");
        }
        Ran { dir: self.dir, stdout, stderr }
    }
}

impl Ran {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The next command in the same folder (its files, state dir and runs).
    pub fn then(self) -> Test {
        Test::in_dir(self.dir)
    }

    /// Run folders under the default state dir, oldest first.
    pub fn runs(&self) -> Vec<PathBuf> {
        let mut runs: Vec<PathBuf> = std::fs::read_dir(self.path().join(".drscript/runs"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        runs.sort();
        runs
    }

    pub fn journal(&self) -> Vec<serde_json::Value> {
        journal_of(self.runs().last().expect("a run folder"))
    }

    pub fn report(&self) -> String {
        std::fs::read_to_string(self.runs().last().expect("a run folder").join("report.md")).unwrap()
    }

    /// Every file the run left behind, concatenated (for secret greps).
    pub fn all_files(&self) -> String {
        let mut text = String::new();
        visit(self.path(), &mut text);
        text
    }
}

fn visit(dir: &Path, text: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            visit(&path, text);
        } else if let Ok(contents) = std::fs::read_to_string(&path) {
            text.push_str(&contents);
        }
    }
}

pub fn journal_of(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn events<'a>(journal: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    journal.iter().filter(|e| e["event"] == kind).collect()
}

pub const CONFIG: &str = r#"
[environments.prod]
kube_context = "prod"
namespace = "adeptia"
release = "ac"
gateway = "https://prod.example.com"

[environments.dr]
kube_context = "dr"
namespace = "adeptia"
release = "ac"
gateway = "https://dr.example.com"
[environments.dr.replicas]
runtime = 3
"#;
