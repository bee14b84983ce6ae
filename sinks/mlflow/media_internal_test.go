package mlflow

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

// TestImagePair: a JPEG becomes a PNG of the same size, and a 600x300
// image gets a 256x128 thumbnail whose pixels average the source's.
func TestImagePair(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 600, 300))
	for y := range 300 {
		for x := range 600 {
			c := color.NRGBA{R: 200, G: 0, B: 0, A: 255}
			if x%2 == 1 {
				c = color.NRGBA{R: 0, G: 0, B: 100, A: 255}
			}
			src.Set(x, y, c)
		}
	}
	var j bytes.Buffer
	if err := jpeg.Encode(&j, src, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	full, _, ok := imagePair(j.Bytes())
	if !ok {
		t.Fatal("JPEG not decoded")
	}
	fi, err := png.Decode(bytes.NewReader(full))
	if err != nil || fi.Bounds() != src.Bounds() {
		t.Fatalf("full image: %v %v", err, fi)
	}
	var p bytes.Buffer
	png.Encode(&p, src)
	full, thumb, ok := imagePair(p.Bytes())
	if !ok || !bytes.Equal(full, p.Bytes()) {
		t.Fatal("a PNG is not kept byte for byte")
	}
	ti, err := png.Decode(bytes.NewReader(thumb))
	if err != nil || ti.Bounds() != image.Rect(0, 0, 256, 128) {
		t.Fatalf("thumbnail: %v %v", err, ti)
	}
	r, g, b, a := ti.At(100, 60).RGBA()
	if r>>8 < 80 || r>>8 > 120 || g != 0 || b>>8 < 40 || b>>8 > 60 || a>>8 != 255 {
		t.Errorf("thumbnail pixel %d %d %d %d, want the average of red and blue", r>>8, g>>8, b>>8, a>>8)
	}
	if _, _, ok := imagePair([]byte("not an image")); ok {
		t.Error("text decoded as an image")
	}
}

// TestMediaKey: names stay inside MLflow's image key alphabet and inside
// the folder they are written to.
func TestMediaKey(t *testing.T) {
	for in, want := range map[string]string{
		"samples/image": "samples~image", "精度/a+b%c": "__~a_b_c", "": "_", "..": "__",
	} {
		if got := mediaKey(in, true); got != want {
			t.Errorf("mediaKey(%q, true) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"samples/table": "samples/table", "/a//b/": "a/b", "../x": "__/x", "a/../b": "a/__/b", "a/.": "a/_",
	} {
		if got := mediaKey(in, false); got != want {
			t.Errorf("mediaKey(%q, false) = %q, want %q", in, got, want)
		}
	}
}
