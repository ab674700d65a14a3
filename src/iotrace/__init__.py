"""iotrace: an I/O tracer for HPC jobs."""

__version__ = "0.1.0"
