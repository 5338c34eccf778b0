#!/bin/sh
# build.sh puts the viewers the demo page serves into web/dist/, where the
# binary embeds them (web.go): it runs `npm ci` here (install scripts off)
# when package-lock.json changed since the last run, then copies
# OpenSeadragon's and Mirador's ready-made browser bundles and licences.
# `make web` (a prerequisite of build, run and test) and the Dockerfile run it.
set -eu
cd "$(dirname "$0")"
lock=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.package-lock.sha256 2>/dev/null)" != "$lock" ]; then
	echo "npm ci in web/"
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	echo "$lock" > node_modules/.package-lock.sha256
fi
osd=node_modules/openseadragon/build/openseadragon
tmp=$(mktemp -d dist.tmp.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/openseadragon" "$tmp/mirador"
cp "$osd/openseadragon.min.js" node_modules/openseadragon/LICENSE.txt "$tmp/openseadragon/"
cp -R "$osd/images" "$tmp/openseadragon/"
cp node_modules/mirador/dist/mirador.min.js node_modules/mirador/LICENSE "$tmp/mirador/"
# Replace only what changed, so that an unchanged tree leaves go build's
# cache alone.
for d in openseadragon mirador; do
	if ! diff -r "$tmp/$d" "dist/$d" >/dev/null 2>&1; then
		rm -rf "dist/$d" && mv "$tmp/$d" "dist/$d"
	fi
done
