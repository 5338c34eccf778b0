package rules

import (
	"reflect"
	"strings"
	"testing"
)

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits.Validate(); err != nil {
		t.Error(err)
	}
	if err := (Limits{}).Validate(); err != nil {
		t.Errorf("no limits: %v", err)
	}
	err := Limits{MaxArea: -1, MaxWidth: 5, MaxHeight: -2}.Validate()
	if err == nil || !strings.Contains(err.Error(), "ImageMaxArea: -1") || !strings.Contains(err.Error(), "ImageMaxHeight: -2") ||
		strings.Contains(err.Error(), "ImageMaxWidth") {
		t.Errorf("Validate = %v", err)
	}
}

// DefaultClassifier is what the zero Classifier classifies as, and it is
// valid; a zero MaxSize, as written by an operator, is not.
func TestDefaultClassifier(t *testing.T) {
	d := DefaultClassifier()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	a, b, c, e := d.settings()
	w, x, y, z := Classifier{}.settings()
	if a != w || b != x || !reflect.DeepEqual(c, y) || !reflect.DeepEqual(e, z) {
		t.Errorf("DefaultClassifier %v %v %v %v, zero classifies as %v %v %v %v", a, b, c, e, w, x, y, z)
	}
	d.TileFormats[0] = FormatPNG // a copy: the defaults stay
	if DefaultClassifier().TileFormats[0] != FormatJPG {
		t.Error("DefaultClassifier shares its slices")
	}
	err := Classifier{TileMaxSize: 0, ThumbnailMaxSize: MaxClassifySize + 1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "Tiers.Tile.MaxSize: 0") || !strings.Contains(err.Error(), "Tiers.Thumbnail.MaxSize: 100001") {
		t.Errorf("Validate = %v", err)
	}
	if got := strings.Join(FormatNames(), ","); got != "jpg,png,webp,gif,tif" {
		t.Errorf("FormatNames = %s", got)
	}
}
