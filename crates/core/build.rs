// The stdlib is compiled into the engine (include_dir); rebuild when it changes.
fn main() {
    println!("cargo:rerun-if-changed=../../stdlib");
}
