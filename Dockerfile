# iiif-proxy in a container: Debian's libvips, a non-root user, the cache
# on a volume. Build from the repository's root:
#
#   docker build -t iiif-proxy --build-arg VERSION=$(git describe --tags --always) .
#   docker run -p 12415:12415 -v /srv/images:/var/local/images:ro \
#       -v iiif-cache:/var/cache/iiif-proxy iiif-proxy
#
# As in RAIS's image, images are read from /var/local/images (RAIS_TILEPATH)
# and every setting can come from RAIS_* variables (-e RAIS_LOGFORMAT=json).

FROM golang:1.26-bookworm AS build
# nodejs and npm fetch the demo page's viewers (web/package-lock.json), which
# the binary embeds; the runtime image has no Node.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libvips-dev pkg-config nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY web/package.json web/package-lock.json web/.npmrc web/build.sh web/
RUN mkdir -p web/dist && web/build.sh
COPY . .
ARG VERSION=devel
ARG COMMIT=
RUN go build -trimpath -ldflags "-X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/iiif-proxy ./cmd/iiif-proxy

FROM debian:bookworm-slim
# libvips42 is the runtime library libvips-dev linked against; its
# dependencies bring the image loaders (libjpeg, libtiff, libopenjp2, libwebp,
# libpng, lcms2).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libvips42 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/cache/iiif-proxy --shell /usr/sbin/nologin iiif-proxy \
 && install -d -o iiif-proxy -g iiif-proxy -m 0750 /var/cache/iiif-proxy \
 && install -d -m 0755 /var/local/images /etc/iiif-proxy
COPY --from=build /out/iiif-proxy /usr/local/bin/iiif-proxy
COPY conf/rais.toml /etc/iiif-proxy/rais.toml
# The container's own addresses: the IIIF port on every interface, the admin
# listener too (publish 12416 only where you mean to). Without AdminToken it
# serves /metrics and /stats read-only and refuses purges, as the log says.
# The demo page lists the identifiers: off, as make install writes it
# (-e RAIS_DEMOPAGE=true turns it on).
ENV RAIS_TILEPATH=/var/local/images \
    RAIS_CACHEDIR=/var/cache/iiif-proxy \
    RAIS_ADDRESS=:12415 \
    RAIS_ADMINADDRESS=:12416 \
    RAIS_DEMOPAGE=false
VOLUME /var/cache/iiif-proxy
EXPOSE 12415 12416
USER iiif-proxy
HEALTHCHECK --interval=30s --timeout=3s CMD ["/usr/local/bin/iiif-proxy", "health", "-config", "/etc/iiif-proxy/rais.toml"]
ENTRYPOINT ["/usr/local/bin/iiif-proxy"]
CMD ["-config", "/etc/iiif-proxy/rais.toml"]
