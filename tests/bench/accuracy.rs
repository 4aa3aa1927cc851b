//! Accuracy benchmark (to be written).
fn main() {}
