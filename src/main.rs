//! The eddy server binary.

fn main() {
    println!("eddy");
}
