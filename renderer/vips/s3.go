package vips

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/iiif-proxy/iiif-proxy/renderer"
	"github.com/iiif-proxy/iiif-proxy/rules"
	"github.com/iiif-proxy/iiif-proxy/sources"
)

// Sources on S3 (Config.S3): the same renderer, reading through the
// source cache of package sources. A pyramidal TIFF or a JPEG 2000 is read
// by ranges, through a libvips custom source (remote.go), so a tile costs
// the header and the tiles it touches; a source that can only be decoded
// from the start (flat JPEG, PNG, WebP, GIF, stripped TIFF) is made whole
// locally first and then read as a local file, as is the automatic
// pyramid builder's input. info.json costs the header ranges only, for any
// format.

// identityOf is an S3 object version's identity: its ETag and size.
func identityOf(o sources.Object) Identity { return Identity{ETag: o.ETag, Size: o.Size} }

// infoS3 is Info for an S3 source: a conditional request (a 304 when the
// cached version is current), then the description from memory, or from
// the header ranges.
func (v *Vips) infoS3(ctx context.Context, id string) (*renderer.Source, error) {
	obj, err := v.s3.Stat(ctx, id)
	if err != nil {
		return nil, err
	}
	ident := identityOf(obj)
	s, ok := v.meta.Get(id)
	if !ok || s.Identity != ident {
		rf, err := v.s3.Open(obj)
		if err != nil {
			return nil, openError(err)
		}
		defer rf.Close()
		if s, err = v.describe(id, input{rf: rf, at: time.Now()}, ident, obj.ModTime); err != nil {
			return nil, err
		}
	}
	if v.pyr != nil {
		v.pyr.want(s)
	}
	return &s.Source, nil
}

// openS3 opens src's S3 object, the version src describes (without asking
// the store when the source cache knows it), by ranges or, with whole,
// as a complete local copy.
func (v *Vips) openS3(ctx context.Context, src *source, whole bool) (input, error) {
	obj, ok := v.s3.Known(src.ID)
	if !ok {
		// Evicted since it was described: ask again.
		var err error
		if obj, err = v.s3.Stat(ctx, src.ID); err != nil {
			return input{}, err
		}
	}
	if identityOf(obj) != src.Identity {
		return input{}, ErrSourceChanged
	}
	at := time.Now()
	rf, err := v.s3.Open(obj)
	if err != nil {
		return input{}, openError(err)
	}
	if !whole {
		return input{rf: rf, at: at}, nil
	}
	f, err := rf.Whole(ctx)
	if err != nil {
		rf.Close()
		return input{}, err
	}
	return input{f: f, rf: rf, at: at}, nil
}

// openError is the error of a failed sources.Open: a newer version meanwhile
// (describe again), or the source cache's disk (unavailable: 502).
func openError(err error) error {
	if errors.Is(err, ErrSourceChanged) {
		return err
	}
	return &renderer.UnavailableError{Err: err}
}

// renderS3 is Render for an S3 source.
func (v *Vips) renderS3(ctx context.Context, src *source, res rules.Resolved) (Image, error) {
	if v.pyr != nil && src.auto {
		if obj, ok := v.s3.Known(src.ID); ok && identityOf(obj) != src.Identity {
			return Image{}, ErrSourceChanged
		}
		if img, ok, err := v.renderPyramid(ctx, src, res); ok {
			return img, err
		}
	}
	// Random-access sources (tiled TIFF, JPEG 2000) by ranges; the rest
	// are decoded from the start, so they are fetched whole first.
	in, err := v.openS3(ctx, src, src.seq)
	if err != nil {
		return Image{}, err
	}
	defer in.close()
	return v.render(ctx, in, src, res)
}

// sourceFile opens the whole of src as a local file for the pyramid
// builder, with a check that it is still src's version when the build ends.
func (v *Vips) sourceFile(ctx context.Context, src *source) (*os.File, func() bool, error) {
	if v.s3 != nil {
		in, err := v.openS3(ctx, src, true)
		if err != nil {
			return nil, nil, err
		}
		in.rf.Close() // the local copy is of that version, and stays
		return in.f, func() bool { return true }, nil
	}
	f, fi, err := v.open(src.ID)
	if err != nil {
		return nil, nil, err
	}
	if IdentityOf(fi) != src.Identity {
		f.Close()
		return nil, nil, ErrSourceChanged
	}
	return f, func() bool {
		fi, err := f.Stat()
		return err == nil && IdentityOf(fi) == src.Identity
	}, nil
}

// forget drops what is kept open on an S3 object version that left the
// source cache, so its blocks are fetched (and counted) anew.
func (v *Vips) forget(o sources.Object) {
	ident := identityOf(o)
	v.open_.RemoveFunc(func(k openKey) bool { return k.ident == ident })
}
