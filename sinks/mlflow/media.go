package mlflow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // W&B images may be GIFs
	_ "image/jpeg"
	"image/png"
	"io"
	"strconv"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
)

// Media in MLflow's own layouts. A W&B history value of type "image-file"
// is written a second time where MLflow's UI looks for images logged with
// mlflow.log_image(key=..., step=...): images/<key>+step+<step>+timestamp+
// <ms>+<id>.png and a thumbnail ...+compressed.png (at most 256 pixels on a
// side), with the run tag mlflow.loggedImages=True; the UI's image grid then
// shows them with a step slider. A "table-file" value whose file holds
// {"columns": [...], "data": [[...]]} is written as the JSON MLflow's
// log_table writes (pandas' "split" orientation) under
// tables/<key>/step_<step>.json and listed in the run tag
// mlflow.loggedArtifacts as [{"path": ..., "type": "table"}]. These files
// are recorded in Coverage.Generated and the tags in mlflowconv's
// MediaTags, so the MLflow source gives back the original run; the W&B
// files themselves and every rich value stay where they were.
const (
	mediaImageType = "image-file"
	mediaTableType = "table-file"
	mediaMaxBytes  = 64 << 20 // larger media stay plain files
	thumbnailSide  = 256      // mlflow.tracking.multimedia.COMPRESSED_IMAGE_SIZE
)

// mediaValue is a rich value to write in MLflow's media layout at commit.
type mediaValue struct {
	key, typ   string
	step, time int64
	file       string
}

// noteMedia remembers the rich values Commit writes as MLflow media.
func (w *writer) noteMedia(v schema.RichValue) {
	if (v.Type == mediaImageType || v.Type == mediaTableType) && len(v.Files) > 0 {
		w.media = append(w.media, mediaValue{key: v.Key, typ: v.Type, step: v.Step, time: v.Time, file: v.Files[0]})
	}
}

// writeMedia writes the noted images and tables in MLflow's layouts and
// sets the tags MLflow's UI reads. A medium whose file did not arrive, is
// too large, or cannot be decoded stays a plain file only, counted in
// Coverage.MediaNotShown. The run's own mlflow.loggedImages and
// mlflow.loggedArtifacts tags, if it has them, are left as they are.
//
// With send false (an append with nothing written yet: the rich values
// and files are the copy's, and so are their images and tables), nothing
// is uploaded and no tag set; the coverage is counted as when sending.
func (w *writer) writeMedia(ctx context.Context, send bool) error {
	if len(w.media) == 0 {
		return nil
	}
	own := map[string]bool{}
	for _, t := range w.src.Tags {
		own[t.Key] = true
	}
	var images bool
	var tables []map[string]string
	tagLen := 2
	for _, m := range w.media {
		body, ok, err := w.readMedia(ctx, m.file)
		if err != nil {
			return err
		}
		if !ok {
			w.cov.MediaNotShown++
			continue
		}
		switch m.typ {
		case mediaImageType:
			full, thumb, ok := imagePair(body)
			name := imageName(m, w.run.RunID)
			if !ok || w.written[name+".png"] || w.written[name+"+compressed.png"] {
				w.cov.MediaNotShown++
				continue
			}
			for _, f := range []struct {
				p string
				b []byte
			}{{name + ".png", full}, {name + "+compressed.png", thumb}} {
				if !send {
					w.cov.Generated = append(w.cov.Generated, f.p)
					continue
				}
				if err := w.api().UploadBytes(ctx, w.run.ArtifactURI, f.p, f.b); err != nil {
					return fmt.Errorf("uploading %s: %w", f.p, err)
				}
				w.cov.Generated = append(w.cov.Generated, f.p)
			}
			images = true
		case mediaTableType:
			table, ok := splitTable(body)
			p := "tables/" + mediaKey(m.key, false) + "/step_" + strconv.FormatInt(m.step, 10) + ".json"
			entry := map[string]string{"path": p, "type": "table"}
			n := len(p) + 36
			if !ok || w.written[p] || own[mlflowconv.TagLoggedArtifacts] || tagLen+n > mlflowapi.MaxTagValueLength {
				w.cov.MediaNotShown++
				continue
			}
			if send {
				if err := w.api().UploadBytes(ctx, w.run.ArtifactURI, p, table); err != nil {
					return fmt.Errorf("uploading %s: %w", p, err)
				}
			}
			w.cov.Generated = append(w.cov.Generated, p)
			tables, tagLen = append(tables, entry), tagLen+n
		}
	}
	var tags []mlflowapi.Tag
	if images && !own[mlflowconv.TagLoggedImages] {
		tags = append(tags, mlflowapi.Tag{Key: mlflowconv.TagLoggedImages, Value: mlflowconv.LoggedImagesValue})
	}
	if len(tables) > 0 {
		tags = append(tags, mlflowapi.Tag{Key: mlflowconv.TagLoggedArtifacts, Value: loggedArtifacts(tables)})
	}
	if len(tags) == 0 || !send {
		return nil
	}
	if err := w.api().LogBatch(ctx, mlflowapi.LogBatch{RunID: w.run.RunID, Tags: tags}); err != nil {
		return fmt.Errorf("setting the media tags: %w", err)
	}
	return nil
}

// readMedia reads a run file written earlier, or reports false when it was
// not written or is larger than mediaMaxBytes.
func (w *writer) readMedia(ctx context.Context, p string) ([]byte, bool, error) {
	if !w.written[p] || w.cov.FileProblems[p] != "" {
		return nil, false, nil
	}
	stored := mlflowconv.StoredPath(p)
	body, err := w.api().OpenArtifact(ctx, w.run.RunID, w.run.ArtifactURI, stored)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s back for MLflow's media layout: %w", p, err)
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, mediaMaxBytes+1))
	if err != nil {
		return nil, false, fmt.Errorf("reading %s back for MLflow's media layout: %w", p, err)
	}
	return b, len(b) <= mediaMaxBytes, nil
}

// imageName is the artifact path, without extension, MLflow's log_image
// gives an image: images/<key with / as ~>+step+<step>+timestamp+<ms>+<id>.
// The id is uuid-shaped, derived from the run, key and step, so a re-run
// writes the same names.
func imageName(m mediaValue, runID string) string {
	sum := sha256.Sum256([]byte(runID + "\x00" + m.key + "\x00" + strconv.FormatInt(m.step, 10) + "\x00" + m.file))
	h := hex.EncodeToString(sum[:16])
	id := h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	return fmt.Sprintf("images/%s+step+%d+timestamp+%d+%s", mediaKey(m.key, true), m.step, max(m.time, 0), id)
}

// mediaKey keeps the characters MLflow allows in an image key (letters,
// digits, '_', '-', '.', ' ', '/') and replaces the others by '_'; with
// tilde, '/' becomes '~' as in MLflow's image file names.
func mediaKey(key string, tilde bool) string {
	var b strings.Builder
	for _, r := range key {
		switch {
		case r == '/' && tilde:
			b.WriteByte('~')
		case r == '/' || r == '_' || r == '-' || r == '.' || r == ' ',
			'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	var segs []string
	for _, seg := range strings.Split(b.String(), "/") {
		switch seg {
		case "":
		case ".", "..":
			segs = append(segs, strings.Repeat("_", len(seg)))
		default:
			segs = append(segs, seg)
		}
	}
	s := strings.Join(segs, "/")
	if s == "" || s == "." || s == ".." {
		s = "_"
	}
	return s
}

// imagePair returns an image as PNG (its own bytes when it is one) and a
// PNG thumbnail at most thumbnailSide pixels on a side, or false when the
// bytes are no image Go decodes (PNG, JPEG, GIF).
func imagePair(b []byte) (full, thumb []byte, ok bool) {
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, nil, false
	}
	full = b
	if format != "png" {
		var buf bytes.Buffer
		if png.Encode(&buf, img) != nil {
			return nil, nil, false
		}
		full = buf.Bytes()
	}
	var buf bytes.Buffer
	if png.Encode(&buf, shrink(img, thumbnailSide)) != nil {
		return nil, nil, false
	}
	return full, buf.Bytes(), true
}

// shrink scales img down, keeping its aspect ratio, to at most side pixels
// on its longer side, averaging the source pixels of each target pixel.
func shrink(img image.Image, side int) image.Image {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	if w <= side && h <= side || w == 0 || h == 0 {
		return img
	}
	nw, nh := side, max(1, h*side/w)
	if h > w {
		nw, nh = max(1, w*side/h), side
	}
	out := image.NewNRGBA(image.Rect(0, 0, nw, nh))
	for y := range nh {
		y0, y1 := r.Min.Y+y*h/nh, r.Min.Y+max((y+1)*h/nh, y*h/nh+1)
		for x := range nw {
			x0, x1 := r.Min.X+x*w/nw, r.Min.X+max((x+1)*w/nw, x*w/nw+1)
			var sr, sg, sb, sa, n uint64
			for yy := y0; yy < y1; yy++ {
				for xx := x0; xx < x1; xx++ {
					c := color.NRGBA64Model.Convert(img.At(xx, yy)).(color.NRGBA64)
					sr, sg, sb, sa, n = sr+uint64(c.R), sg+uint64(c.G), sb+uint64(c.B), sa+uint64(c.A), n+1
				}
			}
			out.Set(x, y, color.NRGBA64{R: uint16(sr / n), G: uint16(sg / n), B: uint16(sb / n), A: uint16(sa / n)})
		}
	}
	return out
}

// splitTable returns a W&B table file as MLflow's log_table JSON, which
// has the same two fields, or false when the file holds no such table.
func splitTable(b []byte) ([]byte, bool) {
	var t struct {
		Columns []json.RawMessage   `json:"columns"`
		Data    [][]json.RawMessage `json:"data"`
	}
	if json.Unmarshal(b, &t) != nil || t.Columns == nil {
		return nil, false
	}
	if t.Data == nil {
		t.Data = [][]json.RawMessage{}
	}
	out, err := json.Marshal(t)
	return out, err == nil
}

// loggedArtifacts is the mlflow.loggedArtifacts value, spaced as Python's
// json.dumps writes it.
func loggedArtifacts(tables []map[string]string) string {
	parts := make([]string, len(tables))
	for i, t := range tables {
		p, _ := json.Marshal(t["path"])
		parts[i] = `{"path": ` + string(p) + `, "type": "table"}`
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
