"""The MPI families iotrace builds a shim for: Open MPI's handles are pointers, MPICH's ints, so
there is one shim per family (docs/mpi.md).  Which one a command runs with is the launcher's
to decide (launcher/mpi.c: the program's DT_NEEDED libraries and theirs, resolved the way the
dynamic loader does, else an MPI launcher known by name); `--mpi FAMILY` forces it."""

FAMILIES = ("openmpi", "mpich")
