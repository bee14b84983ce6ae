package tensorboard

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/runferry/runferry/internal/tfevents"
)

// textSuffix is what tensorboardX and PyTorch append to a text tag.
const textSuffix = "/text_summary"

// textOf joins a text tensor's strings with newlines.
func textOf(t tfevents.Tensor) string {
	parts := make([]string, len(t.Strings))
	for i, s := range t.Strings {
		parts[i] = string(s)
	}
	return strings.Join(parts, "\n")
}

// textParams returns the params a text value gives when it is a
// hyperparameter dump: one string holding a JSON object. Keys are the tag
// (less "/text_summary") and the object's paths joined with "."; string
// leaves are kept as they are, other leaves as JSON text.
func textParams(key string, t tfevents.Tensor) (map[string]string, bool) {
	if len(t.Strings) != 1 || t.Len() != 1 {
		return nil, false
	}
	s := bytes.TrimSpace(t.Strings[0])
	if len(s) < 2 || s[0] != '{' {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(s, &obj) != nil {
		return nil, false
	}
	out := map[string]string{}
	flatten(strings.TrimSuffix(key, textSuffix), obj, out)
	return out, true
}

func flatten(prefix string, obj map[string]json.RawMessage, out map[string]string) {
	for k, v := range obj {
		name := prefix + "." + k
		var sub map[string]json.RawMessage
		if len(v) > 0 && v[0] == '{' && json.Unmarshal(v, &sub) == nil && len(sub) > 0 {
			flatten(name, sub, out)
			continue
		}
		out[name] = paramValue(v)
	}
}

// paramValue is a JSON value as a param: a string unquoted, anything else
// as compact JSON text.
func paramValue(v []byte) string {
	var s string
	if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) == nil {
		return buf.String()
	}
	return string(v)
}

// histogramJSON is a histogram rich value: TF1 protos keep their fields,
// TF2 tensors (k×3: left edge, right edge, count) their buckets.
func histogramJSON(it item) (string, error) {
	if it.value.Kind == tfevents.KindHistogram {
		h, err := tfevents.DecodeHistogram(it.value.Raw)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf(`{"_type":"tensorboard.histogram","min":%s,"max":%s,"num":%s,"sum":%s,"sum_squares":%s,"bucket_limit":%s,"bucket":%s}`,
			num(h.Min), num(h.Max), num(h.Num), num(h.Sum), num(h.SumSquares), nums(h.BucketLimit), nums(h.Bucket)), nil
	}
	t := it.tensor
	if len(t.Shape) != 2 || t.Shape[1] != 3 && t.Shape[0] != 0 {
		return "", fmt.Errorf("histogram tensor of shape %v, want k×3", t.Shape)
	}
	var b strings.Builder
	b.WriteString(`{"_type":"tensorboard.histogram","buckets":[`)
	for i := 0; i+2 < len(t.Numbers); i += 3 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "[%s,%s,%s]", num(t.Numbers[i]), num(t.Numbers[i+1]), num(t.Numbers[i+2]))
	}
	b.WriteString("]}")
	return b.String(), nil
}

func num(f float64) string {
	switch {
	case math.IsNaN(f):
		return `"NaN"`
	case math.IsInf(f, 1):
		return `"Infinity"`
	case math.IsInf(f, -1):
		return `"-Infinity"`
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func nums(fs []float64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(num(f))
	}
	b.WriteByte(']')
	return b.String()
}

// encodedImage is one image of an image value.
type encodedImage struct {
	width, height int
	data          []byte // a view of the record
}

// images returns the encoded images of an image value: one for a TF1
// Summary.Image, the third and later strings of a TF2 image tensor (whose
// first two are width and height).
func images(it item) ([]encodedImage, error) {
	if it.value.Kind == tfevents.KindImage {
		im, err := tfevents.DecodeImage(it.value.Raw)
		if err != nil {
			return nil, err
		}
		return []encodedImage{{width: im.Width, height: im.Height, data: im.Encoded}}, nil
	}
	s := it.tensor.Strings
	if len(s) < 2 {
		return nil, fmt.Errorf("image tensor holds %d strings, want width, height and images", len(s))
	}
	w, _ := strconv.Atoi(string(s[0]))
	h, _ := strconv.Atoi(string(s[1]))
	var out []encodedImage
	for _, d := range s[2:] {
		out = append(out, encodedImage{width: w, height: h, data: d})
	}
	return out, nil
}

// imageFormat names an image's format from its first bytes.
func imageFormat(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG")):
		return "png"
	case bytes.HasPrefix(b, []byte("\xff\xd8")):
		return "jpg"
	case bytes.HasPrefix(b, []byte("GIF8")):
		return "gif"
	}
	return "bin"
}

// imagePath is where the n-th image of key at step lies among the run's
// files.
func imagePath(key string, step int64, n int, format string) string {
	return fmt.Sprintf("media/images/%s/%d_%d.%s", safeKey(key), step, n, format)
}

// safeKey keeps a key usable as a path: characters other than letters,
// digits, "-", "_", "." and "/" become "_", and "." or ".." segments are
// renamed.
func safeKey(key string) string {
	b := []byte(key)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '/') {
			b[i] = '_'
		}
	}
	segs := strings.Split(string(b), "/")
	for i, s := range segs {
		if s == "" || s == "." || s == ".." {
			segs[i] = "_" + s
		}
	}
	return strings.Join(segs, "/")
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
