package main

import (
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestScreenshots runs scripts/screenshots.sh (what `make screenshots`
// runs) where Debian's Chromium is installed: a real MLflow server, the
// W&B fixtures copied into it by runferry, headless Chromium. Each of the
// four pages must be written as a PNG that shows something: many colours,
// and a good share of pixels that are not the page's background. The image
// grid must show the image itself, not MLflow's grey placeholder: each of
// the four colours scripts/screenshot_run.py paints its images with covers
// a good patch of the picture. (The script itself fails when a request of
// a page failed or a page says "Failed to load", as the overview's child
// runs did when MLflow refused the UI's search from a non-localhost
// origin.)
func TestScreenshots(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("no Chromium at /usr/bin/chromium (apt-get install chromium): screenshots not tested")
	}
	venv := os.Getenv("RUNFERRY_VENV")
	if venv == "" {
		t.Skip("RUNFERRY_VENV not set: screenshots not tested")
	}
	root := testenv.RepoRoot(t)
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(root, "scripts/screenshots.sh"), out)
	// RUNFERRY: the package's shared runferry binary, not a build of the
	// script's own.
	cmd.Env = append(os.Environ(), "RUNFERRY_VENV="+venv, "CHROMIUM="+chromium, "RUNFERRY="+testenv.BuildOnce(t, "."))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/screenshots.sh: %v\n%s", err, b)
	}
	for _, name := range []string{"mlflow-run-overview", "mlflow-run-model-metrics", "mlflow-run-system-metrics", "mlflow-run-images"} {
		f, err := os.Open(filepath.Join(out, name+".png"))
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s.png: %v", name, err)
			continue
		}
		colours, ink := inked(img)
		if colours < 50 || ink < 0.03 {
			t.Errorf("%s.png looks blank: %d colours, %.1f%% of pixels not background", name, colours, ink*100)
		}
		if name == "mlflow-run-images" {
			// The colours of SCREENSHOT_COLOURS in scripts/screenshot_run.py.
			for _, c := range [][3]uint8{{220, 40, 40}, {40, 180, 60}, {40, 70, 220}, {240, 200, 30}} {
				if n := near(img, c); n < 1000 {
					t.Errorf("%s.png: the logged image is not shown: %d pixels of colour %v", name, n, c)
				}
			}
		}
	}
}

// near counts the pixels of img within 12 of c in each channel.
func near(img image.Image, c [3]uint8) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if d(r>>8, c[0]) <= 12 && d(g>>8, c[1]) <= 12 && d(bl>>8, c[2]) <= 12 {
				n++
			}
		}
	}
	return n
}

func d(a uint32, b uint8) uint32 {
	if a > uint32(b) {
		return a - uint32(b)
	}
	return uint32(b) - a
}

// inked returns how many distinct colours img has and the share of its
// pixels that differ from its most common colour.
func inked(img image.Image) (int, float64) {
	counts := map[[4]uint32]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			counts[[4]uint32{r, g, bl, a}]++
		}
	}
	most := 0
	for _, n := range counts {
		most = max(most, n)
	}
	total := b.Dx() * b.Dy()
	if total == 0 {
		return 0, 0
	}
	return len(counts), float64(total-most) / float64(total)
}
