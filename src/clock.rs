//! Wall-clock time in unix seconds. Domain code takes `now` as a parameter;
//! only the edges (HTTP handlers, background tasks) read the clock.

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
