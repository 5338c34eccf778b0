# iiif-proxy: the two commands of the README.
#   make run    install what is missing, generate sample images, serve them
#   make test   install what is missing, run every test
# Both work alone on a fresh Debian machine (as root, or with sudo).

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
SAMPLES ?= samples
# The version and commit -version prints, stamped into the binary; a plain
# `go build` says "devel".
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Debian packages the build and tests need: libvips (with its headers, for cgo;
# liblcms2-dev comes with it), pkg-config to find it, and colord-data's ICC
# profiles (sRGB, Adobe RGB 1998) for the colour tests.
DEB_PACKAGES := libvips-dev liblcms2-dev pkg-config gcc colord-data

# The sidecar tests run a real third-party IIIF server behind a FastCGI
# front: Debian's IIPImage under nginx (cmd/iiif-proxy/sidecar_test.go); the
# purge-forwarding test runs Debian's Varnish in front of iiif-proxy
# (cmd/iiif-proxy/varnish_test.go, conf/varnish.vcl).
SIDECAR_PACKAGES := iipimage-server nginx-light varnish

.PHONY: deps web sidecar-deps s3-deps build run samples test bench fuzz soak clean install uninstall

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v $(GO) >/dev/null || { echo "Go is missing: install Go 1.26 at /usr/local/go"; exit 1; }

# web puts the viewers the demo page serves (OpenSeadragon, Mirador, pinned
# by web/package-lock.json) into web/dist, which the binary embeds: it
# installs Debian's nodejs and npm if npm is missing, then runs web/build.sh
# (npm ci when the lock changed, install scripts off; then a copy). A binary
# built without it still serves the demo page's list, and says the viewers
# are missing.
web:
	@if ! command -v npm >/dev/null; then \
		echo "installing: nodejs npm"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; \
	fi
	@web/build.sh || { echo "make web: the viewers could not be fetched from npm (offline, or behind a firewall?): building without them; the demo page then says so. The browser tests need them."; }

build: deps web
	$(GO) build -ldflags "$(LDFLAGS)" -o iiif-proxy ./cmd/iiif-proxy

samples: build
	./iiif-proxy samples -dir $(SAMPLES)

# RUN_CACHE is make run's cache directory: the configuration's default,
# "cache", would land among the cache package's sources in this checkout.
RUN_CACHE ?= run-cache
run: samples
	./iiif-proxy -config conf/rais.toml -tile-path $(SAMPLES) -cache-dir $(RUN_CACHE)

sidecar-deps:
	@missing=""; \
	[ -x /usr/lib/iipimage-server/iipsrv.fcgi ] || missing="$$missing iipimage-server"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	[ -x /usr/sbin/varnishd ] || missing="$$missing varnish"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The object-storage tests run a real S3 server: MinIO, built once from the
# Go module proxy (about 3 minutes on 2 cores) into MINIO_DIR and reused
# (internal/s3test finds it there; MINIO_BIN overrides).
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_DIR ?= $(HOME)/.cache/iiif-proxy/bin
s3-deps:
	@if [ -x "$(MINIO_DIR)/minio" ] && [ -f "$(MINIO_DIR)/minio.version" ] && [ "$$(cat $(MINIO_DIR)/minio.version)" = "$(MINIO_VERSION)" ]; then :; else \
		echo "building the MinIO server $(MINIO_VERSION) into $(MINIO_DIR) (once; about 3 minutes)"; \
		mkdir -p "$(MINIO_DIR)" && GOBIN="$(MINIO_DIR)" GOFLAGS=-buildvcs=false $(GO) install github.com/minio/minio@$(MINIO_VERSION) && \
		echo "$(MINIO_VERSION)" > "$(MINIO_DIR)/minio.version"; \
	fi

test: deps web viewer-deps sidecar-deps s3-deps
	$(GO) vet ./...
	$(GO) test -count=1 ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 2s ./rules/ ./renderer/vips/

# fuzz runs each fuzz target for FUZZTIME (the URL parser, the identifier
# resolver, and the ban regex of an identifier); `make fuzz FUZZTIME=30m` for a long run.
FUZZTIME ?= 60s
fuzz: deps
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./rules/
	$(GO) test -run '^$$' -fuzz '^FuzzResolve$$' -fuzztime $(FUZZTIME) ./renderer/vips/
	$(GO) test -run '^$$' -fuzz '^FuzzIDRegex$$' -fuzztime $(FUZZTIME) ./purge/

# soak runs the harness's mix workload for DURATION (30m) against the binary
# and plots RSS, goroutines, open files and disk per tier (bench/soak.sh).
soak: deps
	bash bench/soak.sh

clean:
	rm -rf iiif-proxy $(SAMPLES) $(RUN_CACHE)

# install puts the binary, the systemd unit, its service user (sysusers.d)
# and a configuration to edit (/etc/iiif-proxy/rais.toml, never overwritten;
# CacheDir left unset, so the cache goes where the unit's CacheDirectory=
# says, /var/cache/iiif-proxy)
# under DESTDIR (for packagers) and PREFIX (/usr/local). Then: set TilePath
# in /etc/iiif-proxy/rais.toml and `systemctl enable --now iiif-proxy`.
PREFIX ?= /usr/local
DESTDIR ?=
UNITDIR ?= /etc/systemd/system
install: build
	install -Dm755 iiif-proxy $(DESTDIR)$(PREFIX)/bin/iiif-proxy
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)/usr/lib/sysusers.d $(DESTDIR)/etc/iiif-proxy
	sed 's|/usr/local/bin/iiif-proxy|$(PREFIX)/bin/iiif-proxy|' packaging/iiif-proxy.service > $(DESTDIR)$(UNITDIR)/iiif-proxy.service
	chmod 644 $(DESTDIR)$(UNITDIR)/iiif-proxy.service
	install -m644 packaging/iiif-proxy.sysusers $(DESTDIR)/usr/lib/sysusers.d/iiif-proxy.conf
	@if [ -e $(DESTDIR)/etc/iiif-proxy/rais.toml ]; then \
		echo "kept $(DESTDIR)/etc/iiif-proxy/rais.toml"; \
	else \
		sed -e 's|^TilePath = .*|TilePath = "/srv/iiif/images"|' -e 's|^DemoPage = true|DemoPage = false|' \
			conf/rais.toml > $(DESTDIR)/etc/iiif-proxy/rais.toml; \
		echo "wrote $(DESTDIR)/etc/iiif-proxy/rais.toml: set TilePath to your images"; \
	fi
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then \
		systemd-sysusers /usr/lib/sysusers.d/iiif-proxy.conf && systemctl daemon-reload; \
	elif [ -z "$(DESTDIR)" ] && ! id iiif-proxy >/dev/null 2>&1; then \
		useradd --system --home-dir /var/cache/iiif-proxy --shell /usr/sbin/nologin iiif-proxy; \
	fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/iiif-proxy $(DESTDIR)$(UNITDIR)/iiif-proxy.service $(DESTDIR)/usr/lib/sysusers.d/iiif-proxy.conf

# viewer-deps installs what the browser tests (cmd/iiif-proxy/viewer_test.go)
# need beyond `make web` (the viewers): Debian's Chromium if /usr/bin/chromium
# is missing, and test/viewer's npm packages (playwright-core, `npm ci`) if
# they are missing or package-lock.json changed.
# Without node and npm it only says so, and the test skips.
VIEWER := test/viewer
.PHONY: viewer-deps
viewer-deps:
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		echo "viewer-deps: no node or npm on PATH: TestViewerInChromium will skip (it needs Node.js 20 or later)"; \
		exit 0; \
	fi; \
	if [ ! -x /usr/bin/chromium ]; then \
		echo "installing: chromium"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null || exit 1; \
	fi; \
	lock=$$(sha256sum $(VIEWER)/package-lock.json | cut -d' ' -f1); \
	if [ "$$(cat $(VIEWER)/node_modules/.package-lock.sha256 2>/dev/null)" != "$$lock" ]; then \
		echo "npm ci in $(VIEWER)"; \
		(cd $(VIEWER) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) && \
		echo "$$lock" > $(VIEWER)/node_modules/.package-lock.sha256; \
	fi
