package wandbfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// inspectOutput runs Inspect on data and parses its lines.
func inspectOutput(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var out bytes.Buffer
	if _, err := Inspect(&out, bytes.NewReader(data), "inspect.wandb"); err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, line)
	}
	return lines
}

func TestInspect(t *testing.T) {
	w := newTestWriter(false)
	w.write(recordWith(1, KindRun, pbString(nil, 1, "run1")))
	hist := w.write(historyPayload(2, 0, map[string]string{"loss": "NaN"}))
	w.write(pbVarint(nil, protowire.Number(KindHistory), 1)) // does not decode
	w.write(recordWith(4, KindFinal, nil))
	w.write(recordWith(5, KindRun, pbBytes(nil, 23, pbDouble(nil, 2, 0)))) // NaN below
	data := bytes.Clone(w.bytes())
	// Make the branch point value NaN, which JSON cannot hold.
	nan := []byte{0, 0, 0, 0, 0, 0, 0xF8, 0x7F}
	copy(data[len(data)-8:], nan)
	fixChecksum(data, w.written[len(w.written)-1].chunks[0])
	cut := append(data, []byte{1, 2, 3}...) // a truncated chunk header

	lines := inspectOutput(t, cut)
	kinds := []string{}
	for _, l := range lines {
		k, _ := l["kind"].(string)
		if _, ok := l["damage"]; ok {
			k += "!"
		}
		kinds = append(kinds, k)
	}
	if got := strings.Join(kinds, ","); got != "run,history,history!,final,run!,!" {
		t.Fatalf("kinds %s, want run,history,history!,final,run!,! (%v)", got, lines)
	}
	if lines[1]["offset"].(float64) != float64(hist.offset) || lines[1]["num"].(float64) != 2 {
		t.Errorf("history line %v", lines[1])
	}
	rec := lines[1]["record"].(map[string]any)
	if items := rec["items"].([]any); len(items) != 3 {
		t.Errorf("history items %v", items)
	}
	if lines[5]["truncated"] != true || lines[5]["offset"].(float64) != float64(len(data)) {
		t.Errorf("truncation line %v", lines[5])
	}
	if _, ok := lines[3]["record"]; ok {
		t.Errorf("final record has content: %v", lines[3])
	}
}

// fixChecksum recomputes the checksum of the chunk at off after a test
// edited its payload.
func fixChecksum(data []byte, off int64) {
	length := int64(data[off+4]) | int64(data[off+5])<<8
	typ := data[off+6]
	sum := chunkChecksum(typ, data[off+ChunkHeaderSize:off+ChunkHeaderSize+length])
	data[off], data[off+1], data[off+2], data[off+3] = byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)
}

func TestInspectNotWandb(t *testing.T) {
	var out bytes.Buffer
	if _, err := Inspect(&out, strings.NewReader("hello, world"), "x.txt"); err == nil || !strings.Contains(err.Error(), "x.txt") {
		t.Errorf("Inspect error %v", err)
	}
}

// TestInspectSample writes one line per record plus one for the tail of a
// real file cut off while the run was live.
func TestInspectSample(t *testing.T) {
	data, err := os.ReadFile(sampleFile(t, armLive))
	if err != nil {
		t.Fatal(err)
	}
	lines := inspectOutput(t, data)
	if len(lines) != 1107 {
		t.Fatalf("%d lines, want 1106 records + 1 damage", len(lines))
	}
	last := lines[len(lines)-1]
	if last["damage"] == nil || last["offset"].(float64) != 335628 {
		t.Errorf("last line %v", last)
	}
	for _, l := range lines[:1106] {
		if l["damage"] != nil {
			t.Errorf("unexpected damage line %v", l)
		}
	}
}
