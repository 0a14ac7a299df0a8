//! `ServerState`: what every request handler shares. Cheap to clone.

use std::path::PathBuf;
use std::sync::Arc;

use vexil_app::App;

#[derive(Clone)]
pub struct ServerState {
    pub app: Arc<App>,
    /// The flags file the declarations came from, read again by `reload`.
    pub flags_file: PathBuf,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    pub flags: usize,
}

impl ServerState {
    /// Reads the flags file again (SIGHUP). An invalid or unreadable file changes
    /// nothing: the last valid declarations stay, and the error says why, every error
    /// with its file:line:col.
    pub async fn reload(&self) -> Result<Reloaded, vexil::Error> {
        let flags = vexil::read_flag_set(&self.flags_file)?;
        let count = flags.len();
        self.app.replace_flags(flags).await;
        Ok(Reloaded { flags: count })
    }
}
