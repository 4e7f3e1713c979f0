fn main() {
    std::process::exit(drscript::main());
}
