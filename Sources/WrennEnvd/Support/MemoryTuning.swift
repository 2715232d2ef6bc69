import CWrennSpawn

/// glibc malloc settings for a small, long-running guest agent that streams large files through
/// short-lived buffers on several threads.
///
/// By default glibc raises its mmap threshold after every freed large block (up to 32 MiB), after which
/// 256 KiB stream buffers come from per-thread arenas and freed memory stays resident; with up to 8 arenas
/// per core this made envd's RSS wander from 55 to 95 MiB while streaming 1 GiB. A fixed threshold (which
/// disables the dynamic one), two arenas and a low trim threshold keep it flat.
enum MemoryTuning {
    static func apply() {
        wrenn_tune_malloc(128 << 10, 2, 256 << 10)
    }
}
