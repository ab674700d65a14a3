"""The stracer: ptrace recording of the syscalls the shim did not cover."""
