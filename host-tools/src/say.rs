//! Where a command's text for people goes: stdout, or stderr when `--json` keeps stdout for the
//! JSON report alone (so `mote eval … --json | python3 -m json.tool` works).

use std::fmt::Display;

/// The destination of a command's human-readable lines.
#[derive(Clone, Copy, Debug)]
pub struct Say {
    json: bool,
}

impl Say {
    /// Lines to stdout, or to stderr with `json`.
    pub fn new(json: bool) -> Say {
        Say { json }
    }

    /// Writes one line.
    pub fn line(&self, text: impl Display) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
}
