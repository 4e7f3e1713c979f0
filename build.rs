// The runbooks are compiled into the binary for the demo (include_dir); rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=runbooks");
}
