# Two commands do all the set-up on a fresh Debian machine: `make demo` and `make test`.
PYTHON ?= python3
APT_PACKAGES = build-essential cmake pkg-config libunwind-dev libzmq3-dev libmsgpack-dev \
               strace python3-dev chromium openmpi-bin libopenmpi-dev golang-go liburing-dev
STAMP = .deps.stamp

.PHONY: deps install demo test bench lint clean

# System packages: installed with apt when root, else named in one clear message.
deps: $(STAMP)
$(STAMP): Makefile
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	      || { echo "apt-get install failed for: $$missing" >&2; exit 1; }; \
	  else \
	    echo "missing system packages: $$missing -- install them (as root: apt-get install $$missing)" >&2; \
	    exit 1; \
	  fi; \
	fi
	@touch $@

install: deps
	$(PYTHON) -m pip install -q ".[test]"

demo: install
	@PYTHON=$(PYTHON) bash examples/demo.sh

test: install
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) bench/run.py

lint:
	ruff check src stracer analyzer tests bench
	ruff format --check src stracer analyzer tests bench

clean:
	rm -rf build tests/.build $(STAMP)
