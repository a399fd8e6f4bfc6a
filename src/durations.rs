//! Durations as people write them: `90s`, `5m`, `1h30m`, as the flags and
//! the CRD take them.

use std::time::Duration;

/// Formats a duration the way the flags and the CRD take it: `90s`, `5m`,
/// `1h30m`; below a second, `400ms`.
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests;
