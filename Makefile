# Two commands do all the set-up on a fresh Debian machine: `make demo` and `make test`.
#
# PYTHON is only the interpreter that creates the virtual environment (.venv in this checkout);
# iotrace and its Python dependencies are installed there, never over the system's python3
# (Debian's refuses that: PEP 668).  Debian's own /usr/bin/python3 first: a python3 that comes
# first on PATH from a private home (pyenv under a 0700 /root) cannot run the stracer for a
# setuid program's other uid (test_faults' setuid test); PYTHON=... picks another.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
VENV ?= .venv
VPY = $(VENV)/bin/python

# What the demo needs (a C compiler and the shim's build dependencies, a venv-capable Python);
# the tests add the programs and libraries they run under iotrace.
DEMO_PACKAGES = build-essential cmake pkg-config libunwind-dev libmsgpack-dev libxxhash-dev \
                python3-venv
TEST_PACKAGES = $(DEMO_PACKAGES) python3-dev strace chromium openmpi-bin libopenmpi-dev golang-go \
                liburing-dev gcc-multilib rsync sqlite3 libaio-dev fio mpich libmpich-dev \
                libhdf5-openmpi-dev libhdf5-mpich-dev libpnetcdf-dev openjdk-17-jdk-headless rustc \
                universal-ctags python3-h5py-mpi xz-utils zstd zip unzip fakeroot patch nodejs \
                hdf5-tools netcdf-bin pigz busybox zsh ruby lua5.4 gawk cpio lzop brotli lzip \
                xmlstarlet xsltproc libxml2-utils imagemagick pbzip2 lbzip2 plzip pixz 7zip \
                ncompress pax libarchive-tools sharutils squashfs-tools mtools lmdb-utils \
                datamash dos2unix moreutils original-awk dc mksh tcsh fdupes rdfind \
                python3-gdbm tcl m4 curl openssh-client logrotate pv dosfstools file

.PHONY: deps-demo deps-test venv install-demo install-test demo test bench lint clean

# System packages: installed with apt when root, else named in one clear message.
define apt_ensure
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing: "$$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	      || { echo "apt-get install failed for: "$$missing >&2; exit 1; }; \
	  else \
	    echo "missing system packages: "$$missing" -- install them (as root: apt-get install "$$missing")" >&2; \
	    exit 1; \
	  fi; \
	fi
endef

deps-demo:
	$(call apt_ensure,$(DEMO_PACKAGES))

# MPICH (and its HDF5) is installed beside Open MPI, which stays the default mpicc/mpirun/h5pcc
# (the tests call MPICH's by their .mpich names): Debian's alternatives prefer Open MPI; set
# them back if something made MPICH's the default.
deps-test:
	$(call apt_ensure,$(TEST_PACKAGES))
	@if [ "$$(id -u)" = 0 ] && command -v mpirun.openmpi >/dev/null \
	    && ! mpirun --version 2>/dev/null | grep -q "Open MPI"; then \
	  update-alternatives --quiet --set mpi /usr/bin/mpicc.openmpi; \
	  update-alternatives --quiet --set mpirun /usr/bin/mpirun.openmpi; \
	fi
	@if [ "$$(id -u)" = 0 ] && [ -e /usr/bin/h5pcc.openmpi ] \
	    && [ "$$(readlink -f /usr/bin/h5pcc)" != /usr/bin/h5pcc.openmpi ]; then \
	  update-alternatives --quiet --set h5pcc /usr/bin/h5pcc.openmpi; \
	fi

# The virtual environment, made once by $(PYTHON); a broken or half-made one is made again.
$(VPY):
	@rm -rf $(VENV)
	@$(PYTHON) -m venv $(VENV) || { echo "cannot create a virtual environment with $(PYTHON)" \
	  "(on Debian: apt-get install python3-venv)" >&2; rm -rf $(VENV); exit 1; }
	@$(VPY) -m pip install -q --upgrade pip

venv: $(VPY)

# `pip install .` builds the C parts (shim, decoder, stracer loop) with CMake into the venv.
install-demo: deps-demo $(VPY)
	@$(VPY) -m pip install -q .

install-test: deps-test $(VPY)
	@$(VPY) -m pip install -q ".[test,darshan]"

demo: install-demo
	@PYTHON=$(abspath $(VPY)) bash examples/demo.sh

test: install-test
	$(VPY) -m pytest -q

bench: install-test
	$(VPY) bench/run.py

lint: install-test
	$(VENV)/bin/ruff check src stracer analyzer tests bench
	$(VENV)/bin/ruff format --check src stracer analyzer tests bench

clean:
	rm -rf build tests/.build $(VENV)
