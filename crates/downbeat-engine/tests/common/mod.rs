//! What the executor tests share: a temporary workspace with an attempt directory inside.
//! Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use downbeat_engine::executor::AttemptSpec;
use tempfile::TempDir;

/// A temporary workspace with an attempt directory inside (not created yet).
pub struct Fixture {
    _tmp: TempDir,
    pub workspace: PathBuf,
    pub attempt_dir: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let workspace = tmp.path().join("project");
        std::fs::create_dir_all(&workspace).expect("workspace");
        let attempt_dir = tmp.path().join("attempts").join("t1").join("1");
        Self {
            _tmp: tmp,
            workspace,
            attempt_dir,
        }
    }

    pub fn spec(&self) -> AttemptSpec {
        AttemptSpec {
            task_id: "t1".into(),
            title: "Write the parser".into(),
            role: Some("backend".into()),
            attempt: 1,
            prompt: "# Task\nWrite the parser.\n".into(),
            workspace: self.workspace.clone(),
            attempt_dir: self.attempt_dir.clone(),
            timeout: Some(Duration::from_secs(60)),
            env: BTreeMap::new(),
            env_remove: Vec::new(),
            previous: None,
        }
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.attempt_dir.join(name)
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).expect("read attempt file")
    }
}
