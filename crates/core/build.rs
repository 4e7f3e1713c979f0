// The stdlib and the runbooks are compiled into the binary (include_dir); rebuild when they
// change.
fn main() {
    println!("cargo:rerun-if-changed=../../stdlib");
    println!("cargo:rerun-if-changed=../../runbooks");
}
