# PGXN-compatible build of tenant_guard, through cargo-pgrx (so `pgxn install
# tenant_guard` works where a Rust toolchain is present). Without Rust, install
# a Debian package instead (./scripts/package; see README, Installation).
#
#   make                   build for the PostgreSQL whose pg_config is $(PG_CONFIG)
#   make install           copy the built files into that PostgreSQL (no cargo
#                          needed at this step, so `sudo make install` works)
#   make installcheck      the pg_regress specs against a running server
#                          (PGHOST/PGPORT/PGUSER: a superuser; database
#                          $(CONTRIB_TESTDB), made afresh; results in ./results)
#   make uninstall         remove the installed files again
#   make dist              the PGXN source distribution, a zip of this
#                          checkout (./scripts/package --pgxn)
#
# `pgxn install` runs `make` and `make install`, `pgxn check` runs
# `make installcheck`, `pgxn uninstall` runs `make uninstall`; each passes
# PG_CONFIG.
#
# Needs Rust 1.95+ and cargo-pgrx 0.18.1 (cargo install cargo-pgrx --version
# 0.18.1 --locked), libclang and the server headers of that PostgreSQL. The
# cargo-pgrx configuration is kept in target/pgrx-home (PGRX_HOME), not in
# ~/.pgrx, so the build neither needs nor changes `cargo pgrx init` state.

PG_CONFIG ?= pg_config
CARGO ?= cargo
PGRX_VERSION = 0.18.1
EXTENSION = tenant_guard

PG_MAJOR := $(shell $(PG_CONFIG) --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
PKGLIBDIR := $(shell $(PG_CONFIG) --pkglibdir)
SHAREDIR := $(shell $(PG_CONFIG) --sharedir)
BINDIR := $(shell $(PG_CONFIG) --bindir)
PGRX_HOME_DIR = $(CURDIR)/target/pgrx-home
OUT = $(CURDIR)/target/pgxn-pg$(PG_MAJOR)
REGRESS = $(sort $(basename $(notdir $(wildcard tests/pg_regress/sql/*.sql))))
CONTRIB_TESTDB ?= tg_regress_pgxn
SOURCES = $(wildcard src/*.rs sql/*.sql) Cargo.toml Cargo.lock $(EXTENSION).control

.PHONY: all install uninstall installcheck clean dist check-toolchain

all: $(OUT)/.built

check-toolchain:
	@case "$(PG_MAJOR)" in 15|16|18) ;; *) echo "tenant_guard builds for PostgreSQL 15, 16 and 18 (pg_config says '$(PG_MAJOR)')" >&2; exit 1;; esac
	@$(CARGO) pgrx --version 2>/dev/null | grep -q " $(PGRX_VERSION)$$" || { \
	  echo "tenant_guard needs cargo-pgrx $(PGRX_VERSION): cargo install cargo-pgrx --version $(PGRX_VERSION) --locked" >&2; exit 1; }

$(OUT)/.built: $(SOURCES)
	@$(MAKE) --no-print-directory check-toolchain PG_CONFIG=$(PG_CONFIG)
	mkdir -p $(PGRX_HOME_DIR)
	PGRX_HOME=$(PGRX_HOME_DIR) $(CARGO) pgrx init --pg$(PG_MAJOR) $(PG_CONFIG)
	rm -rf $(OUT)
	PGRX_HOME=$(PGRX_HOME_DIR) $(CARGO) pgrx package --no-default-features --features pg$(PG_MAJOR) \
	  --pg-config $(PG_CONFIG) --out-dir $(OUT)
	touch $@

install:
	@test -f $(OUT)/.built || { echo "build first: make PG_CONFIG=$(PG_CONFIG)" >&2; exit 1; }
	install -d $(DESTDIR)$(PKGLIBDIR) $(DESTDIR)$(SHAREDIR)/extension
	install -m 0755 $(OUT)$(PKGLIBDIR)/$(EXTENSION).so $(DESTDIR)$(PKGLIBDIR)/
	install -m 0644 $(OUT)$(SHAREDIR)/extension/$(EXTENSION).control \
	  $(OUT)$(SHAREDIR)/extension/$(EXTENSION)--*.sql $(DESTDIR)$(SHAREDIR)/extension/

uninstall:
	rm -f $(DESTDIR)$(PKGLIBDIR)/$(EXTENSION).so $(DESTDIR)$(SHAREDIR)/extension/$(EXTENSION).control \
	  $(DESTDIR)$(SHAREDIR)/extension/$(EXTENSION)--*.sql

installcheck:
	$(PKGLIBDIR)/pgxs/src/test/regress/pg_regress --inputdir=tests/pg_regress \
	  --bindir=$(BINDIR) --dbname=$(CONTRIB_TESTDB) $(REGRESS)

dist:
	./scripts/package --pgxn

clean:
	rm -rf $(OUT) results regression.diffs regression.out
