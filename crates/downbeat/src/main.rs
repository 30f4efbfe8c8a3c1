// jemalloc instead of the C library's allocator: a plan of a million tasks applies in about
// four fifths of the time and less memory, as the many small strings it frees midway fragment
// glibc's free lists (docs/benchmarks.md, "Applying a plan of 1M tasks").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    downbeat::run()
}
